"""Offline checks for the kong-looker LookML project.

Looker itself is not available to the tests, so this package stands in for
the parts of it they need, each module with one job:

- project: parse every file, apply refinements and extends, resolve
  includes, and answer which fields an explore has.
- liquid: the small subset of Liquid the project uses.
- render: a field's SQL with Looker's substitutions applied for a dialect,
  and whole queries built from fields, filters and access filters.
- filters: Looker filter expressions (user attributes, dashboard filters)
  as SQL.
- checks: reference, include, constant, access-filter and dashboard checks
  that return problems as text.
- ddl: the columns of a CREATE TABLE file.
- stores: the seeded PostgreSQL database and its copy in chdb.
- truth: the numbers the traffic generator implies.
"""
