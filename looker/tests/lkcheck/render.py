"""A field's SQL as Looker would put it in a query, and whole queries.

Looker generates part of every query itself. Offline, this module writes
the equivalent, and the tests rely on these assumptions about it:

- Constants (@{NAME}) are replaced first, then Liquid runs with the
  query's dialect, selected and filtered fields, then ${TABLE} becomes the
  explore's alias and ${field} / ${alias.field} the referenced field's SQL,
  recursively and without added parentheses (so the LookML must bracket
  its own compound expressions).
- Measure types: sum is COALESCE(SUM(x), 0); count is COUNT(*) (the views
  have no primary key); count_distinct is COUNT(DISTINCT x); average,
  min and max are AVG, MIN and MAX; number is its SQL as written.
- type: percentile is PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) on
  PostgreSQL (and Snowflake), quantile(p)(x) on ClickHouse, and
  APPROX_QUANTILES(x, 100)[OFFSET(p*100)] on BigQuery; none of them drops
  to percentile_distinct because no explore joins anything.
- yesno dimensions are CASE WHEN x THEN 'Yes' ELSE 'No' END.
- Time dimension groups truncate in UTC (the connection's time zone):
  DATE_TRUNC on PostgreSQL, toStartOf* on ClickHouse; Looker formats
  some timeframes as text, which changes their type but not their value.
- {% date_start %} / {% date_end %} render as the dialect's timestamp
  literal, or NULL without a filter on that field.
"""

from __future__ import annotations

import re
from datetime import datetime

from . import filters, liquid
from .project import Explore, Field, Project

# Looker's dialect names, as _dialect._name reports them.
DIALECT_NAMES = {
    "postgres": "postgres",
    "clickhouse": "clickhouse",
    "bigquery": "bigquery_standard_sql",
    "snowflake": "snowflake",
}

REF_RE = re.compile(r"\$\{([^}]+)\}")

TIMEFRAMES = {
    "postgres": {
        "raw": "{x}",
        "time": "DATE_TRUNC('second', {x})",
        "minute": "DATE_TRUNC('minute', {x})",
        "hour": "DATE_TRUNC('hour', {x})",
        "date": "CAST(DATE_TRUNC('day', {x}) AS DATE)",
        "week": "CAST(DATE_TRUNC('week', {x}) AS DATE)",
        "month": "CAST(DATE_TRUNC('month', {x}) AS DATE)",
    },
    "clickhouse": {
        "raw": "{x}",
        "time": "toStartOfSecond({x})",
        "minute": "toStartOfMinute({x})",
        "hour": "toStartOfHour({x})",
        "date": "toDate({x})",
        "week": "toMonday({x})",
        "month": "toStartOfMonth({x})",
    },
    "bigquery": {
        "raw": "{x}",
        "time": "TIMESTAMP_TRUNC({x}, SECOND)",
        "minute": "TIMESTAMP_TRUNC({x}, MINUTE)",
        "hour": "TIMESTAMP_TRUNC({x}, HOUR)",
        "date": "DATE({x})",
        "week": "DATE_TRUNC(DATE({x}), WEEK(MONDAY))",
        "month": "DATE_TRUNC(DATE({x}), MONTH)",
    },
    "snowflake": {
        "raw": "{x}",
        "time": "DATE_TRUNC('second', {x})",
        "minute": "DATE_TRUNC('minute', {x})",
        "hour": "DATE_TRUNC('hour', {x})",
        "date": "TO_DATE({x})",
        "week": "DATE_TRUNC('week', {x})",
        "month": "DATE_TRUNC('month', {x})",
    },
}


def percentile_sql(dialect: str, p: float, x: str) -> str:
    if dialect == "clickhouse":
        return f"quantile({p})({x})"
    if dialect == "bigquery":
        return f"APPROX_QUANTILES({x}, 100)[OFFSET({int(round(p * 100))})]"
    return f"PERCENTILE_CONT({p}) WITHIN GROUP (ORDER BY {x})"


def timestamp_literal(dialect: str, t: datetime) -> str:
    s = t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return {
        "postgres": f"TIMESTAMPTZ '{s}+00'",
        "clickhouse": f"toDateTime64('{s}', 3, 'UTC')",
        "bigquery": f"TIMESTAMP('{s}+00')",
        "snowflake": f"TO_TIMESTAMP_NTZ('{s}')",
    }[dialect]


class RenderError(ValueError):
    pass


class Renderer:
    """Renders fields of one explore for one dialect."""

    def __init__(self, project: Project, explore: Explore | str, dialect: str):
        if isinstance(explore, str):
            explore = project.explores[explore]
        self.project = project
        self.explore = explore
        self.dialect = dialect
        self.view = project.explore_view(explore)
        if self.view is None:
            raise RenderError(f"explore {explore.name}: no view {explore.view_name}")
        self.fields = self.view.fields()
        self.alias = explore.alias
        self.ctx = liquid.Context(DIALECT_NAMES[dialect])

    # --- pieces -------------------------------------------------------------

    def _text(self, text: str) -> str:
        return liquid.render(self.project.substitute_constants(text), self.ctx)

    def from_sql(self) -> str:
        table = self.view.sql_table_name
        if table is None:
            raise RenderError(f"view {self.view.name} has no sql_table_name")
        return f"{self._text(table).strip()} AS {self.alias}"

    def field(self, name: str) -> Field:
        if name.startswith(self.alias + "."):
            name = name[len(self.alias) + 1 :]
        if name not in self.fields:
            raise RenderError(f"{self.explore.name}: no field {name}")
        return self.fields[name]

    def _substitute(self, sql: str, stack: tuple) -> str:
        def one(m):
            ref = m.group(1)
            if ref == "TABLE":
                return self.alias
            if "." in ref:
                alias, name = ref.split(".", 1)
                if alias != self.alias:
                    raise RenderError(f"${{{ref}}}: {alias} is not in explore {self.explore.name}")
                ref = name
            return self.expr(ref, stack)

        return REF_RE.sub(one, sql)

    def base_sql(self, name: str, stack: tuple = ()) -> str:
        """The field's sql with Liquid and references applied, before any
        aggregation or type wrapping."""
        if name in stack:
            raise RenderError(f"circular reference: {' -> '.join(stack + (name,))}")
        f = self.field(name)
        if f.sql is None:
            if f.kind == "measure" and f.type == "count":
                return ""
            raise RenderError(f"{self.view.name}.{name} has no sql")
        return self._substitute(self._text(f.sql), stack + (name,)).strip()

    def expr(self, name: str, stack: tuple = ()) -> str:
        """The field as it appears in a SELECT: a dimension's expression or
        a measure's aggregate."""
        f = self.field(name)
        x = self.base_sql(name, stack)
        if f.kind == "dimension":
            if f.timeframe is not None:
                return TIMEFRAMES[self.dialect][f.timeframe].format(x=x)
            if f.type == "yesno":
                return f"CASE WHEN {x} THEN 'Yes' ELSE 'No' END"
            return x
        if f.kind != "measure":
            raise RenderError(f"{name}: {f.kind} fields cannot be selected")
        t = f.type
        if t == "sum":
            return f"COALESCE(SUM({x}), 0)"
        if t == "count":
            return "COUNT(*)"
        if t == "count_distinct":
            return f"COUNT(DISTINCT {x})"
        if t in ("average", "min", "max"):
            return {"average": "AVG", "min": "MIN", "max": "MAX"}[t] + f"({x})"
        if t == "percentile":
            return percentile_sql(self.dialect, float(f.params["percentile"]) / 100, x)
        if t == "number":
            return x
        raise RenderError(f"{name}: measure type {t} not supported here")

    # --- queries ------------------------------------------------------------

    def query(
        self,
        dimensions=(),
        measures=(),
        filters_: dict | None = None,
        user_attributes: dict | None = None,
        time_window: dict | None = None,
        order_by: str | None = None,
    ) -> str:
        """A SELECT of the fields, grouped by the dimensions.

        filters_: field -> Looker filter expression (dimensions in WHERE,
        measures in HAVING). user_attributes: the values Looker would
        apply through the explore's access filters; None runs without them
        (as no Looker user could). time_window: time field -> (start, end)
        datetimes, a time filter Liquid can read with date_start/date_end.
        """
        filters_ = dict(filters_ or {})
        time_window = dict(time_window or {})
        self.ctx = liquid.Context(
            DIALECT_NAMES[self.dialect],
            selected={self._qualified(n) for n in (*dimensions, *measures)},
            filtered={self._qualified(n) for n in (*filters_, *time_window)},
            date_bounds={
                self._qualified(n): tuple(timestamp_literal(self.dialect, t) if t else None for t in se)
                for n, se in time_window.items()
            },
        )
        cols = [f"{self.expr(n)} AS c{i}" for i, n in enumerate((*dimensions, *measures))]
        where, having = [], []
        for name, (start, end) in time_window.items():
            f = self.field(name)
            raw = TIMEFRAMES[self.dialect]["raw"].format(x=self.base_sql(f.name))
            if start:
                where.append(f"{raw} >= {timestamp_literal(self.dialect, start)}")
            if end:
                where.append(f"{raw} < {timestamp_literal(self.dialect, end)}")
        for name, expr in filters_.items():
            f = self.field(name)
            cond = filters.field_filter_sql(f.type, expr, self.expr(name))
            (having if f.kind == "measure" else where).append(cond)
        always = self.explore.params.get("sql_always_where")
        if always:
            where.append(f"({self._substitute(self._text(always), ()).strip()})")
        if user_attributes is not None:
            for af in self.explore.access_filters:
                attr = af["user_attribute"]
                if attr not in user_attributes:
                    raise RenderError(f"no value for user attribute {attr}")
                where.append(filters.string_sql(user_attributes[attr], self.expr(af["field"])))
        sql = f"SELECT {', '.join(cols)}\nFROM {self.from_sql()}"
        if where:
            sql += "\nWHERE " + " AND ".join(where)
        if dimensions:
            sql += "\nGROUP BY " + ", ".join(str(i + 1) for i in range(len(dimensions)))
        if having:
            sql += "\nHAVING " + " AND ".join(having)
        if order_by:
            sql += f"\nORDER BY {order_by}"
        return sql

    def _qualified(self, name: str) -> str:
        return name if "." in name else f"{self.alias}.{name}"
