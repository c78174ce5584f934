"""Static checks of the project. Each returns a list of problems as text
(empty when all is well), so the tests can assert on them and the
mutation tests can assert that a broken copy is caught."""

from __future__ import annotations

import json
import re

from . import liquid
from .project import CONSTANT_RE, Project

REQUIRED_ACCESS_ATTRIBUTES = ("kong_team", "kong_consumer_groups")
# Columns that identify people and machines, and the grant guarding them.
RESTRICTED_COLUMNS = ("client_id", "subject", "client_address")
IDENTITY_GRANT = "kong_client_identity"
# The table each table constant names by default.
TABLE_CONSTANTS = {"REQUESTS_TABLE": "kong_looker_requests", "BATCHES_TABLE": "kong_looker_batches"}

DIMENSION_TYPES = {"string", "number", "yesno", "time", "date", "tier", "zipcode", "location", "distance", "duration"}
MEASURE_TYPES = {
    "sum", "count", "count_distinct", "average", "min", "max", "number", "percentile", "median",
    "sum_distinct", "average_distinct", "percentile_distinct", "median_distinct", "list", "date",
    "string", "yesno", "running_total", "percent_of_total", "percent_of_previous",
}
VALUE_FORMAT_NAMES = (
    {f"decimal_{i}" for i in range(5)}
    | {f"percent_{i}" for i in range(5)}
    | {"id", "usd", "usd_0", "gbp", "gbp_0", "eur", "eur_0"}
)
REF_RE = re.compile(r"\$\{([^}]+)\}")


def _sql_texts(params: dict):
    for key in ("sql", "html", "label", "description"):
        if isinstance(params.get(key), str):
            yield key, params[key]


# --- files and constants ----------------------------------------------------

def parse_problems(project: Project) -> list[str]:
    out = list(p for p in project.problems if "cannot parse" in p or "not valid YAML" in p)
    for rel, doc in project.dashboards.items():
        if not (isinstance(doc, list) and doc and isinstance(doc[0], dict) and "dashboard" in doc[0]):
            out.append(f"{rel}: expected a list holding one dashboard")
    return out


def load_problems(project: Project) -> list[str]:
    """What the loader found besides parse errors: duplicates, unknown
    extends and refinement targets."""
    return [p for p in project.problems if "cannot parse" not in p and "not valid YAML" not in p]


def constant_problems(project: Project) -> list[str]:
    out = []
    for rel, text in project.texts.items():
        for m in CONSTANT_RE.finditer(text):
            if m.group(1) not in project.constants:
                out.append(f"{rel}: @{{{m.group(1)}}} is not declared in manifest.lkml")
    consts = project.constants
    if consts.get("CONNECTION_NAME", {}).get("export") != "override_required":
        out.append("manifest.lkml: CONNECTION_NAME must be export: override_required")
    for name in ("SCHEMA_NAME", "REQUESTS_TABLE", "BATCHES_TABLE"):
        if name not in consts:
            out.append(f"manifest.lkml: constant {name} is missing")
    if project.model.get("connection") != "@{CONNECTION_NAME}":
        out.append(f"{project.model_file}: connection must be \"@{{CONNECTION_NAME}}\"")
    market_path = project.root / "marketplace.json"
    try:
        market = json.loads(market_path.read_text())
    except (OSError, ValueError) as e:
        return out + [f"marketplace.json: {e}"]
    declared = set(market.get("constants", {}))
    if declared != set(consts):
        out.append(f"marketplace.json declares {sorted(declared)}, manifest.lkml {sorted(consts)}")
    if market.get("constants", {}).get("CONNECTION_NAME", {}).get("value_constraint") != "connection":
        out.append("marketplace.json: CONNECTION_NAME needs value_constraint connection")
    models = {m.get("name"): m for m in market.get("models", [])}
    if project.model_name not in models:
        out.append(f"marketplace.json: model {project.model_name} is not listed")
    elif models[project.model_name].get("connection_constant") not in consts:
        out.append("marketplace.json: the model's connection_constant is not a manifest constant")
    return out


def include_problems(project: Project) -> list[str]:
    out = []
    for rel in project.files:
        for pattern in project.includes_of(rel):
            if not project.include_targets(pattern, rel):
                out.append(f"{rel}: include {pattern!r} matches no file")
    reachable = project.reachable_files()
    for rel in project.texts:
        if rel == "manifest.lkml" or rel.endswith(".model.lkml"):
            continue
        if rel not in reachable:
            out.append(f"{rel}: not included by the model, directly or through another file")
    # Each explore file must itself include the views its explores use, as
    # Looker validates files in the order includes bring them in.
    for ex in project.explores.values():
        seen = {ex.file}
        todo = [ex.file]
        while todo:
            r = todo.pop()
            for p in project.includes_of(r):
                for t in project.include_targets(p, r):
                    if t not in seen:
                        seen.add(t)
                        todo.append(t)
        if not ex.extension_required:
            view = project.explore_view(ex)
            if view is not None and not (set(view.files) & seen):
                out.append(f"{ex.file}: explore {ex.name} uses view {view.name} without including it")
    return out


# --- views ------------------------------------------------------------------

def view_problems(project: Project) -> list[str]:
    out = []
    grants = {g["name"] for g in project.model.get("access_grants", [])}
    for view in project.views.values():
        fields = view.fields()
        groups = {name for (kind, name) in view.raw_fields if kind == "dimension_group"}
        for name, f in fields.items():
            where = f"{view.files[0]}: {view.name}.{name}"
            if f.kind == "dimension" and f.timeframe is None and f.type not in DIMENSION_TYPES:
                out.append(f"{where}: dimension type {f.type!r} is not a Looker type")
            if f.kind == "measure":
                if f.type not in MEASURE_TYPES:
                    out.append(f"{where}: measure type {f.type!r} is not a Looker type")
                if f.type == "percentile" and "percentile" not in f.params:
                    out.append(f"{where}: percentile measure without percentile:")
                if f.type != "count" and not f.sql:
                    out.append(f"{where}: measure without sql")
            if f.kind == "dimension" and not f.sql:
                out.append(f"{where}: dimension without sql")
            vfn = f.params.get("value_format_name")
            if vfn and vfn not in VALUE_FORMAT_NAMES:
                out.append(f"{where}: value_format_name {vfn!r} is not one of Looker's")
            for g in f.params.get("required_access_grants", []):
                if g not in grants:
                    out.append(f"{where}: access grant {g} is not defined in the model")
            if not f.hidden and not view.extension_required and not f.params.get("description"):
                out.append(f"{where}: shown to users but has no description")
            for key, text in _sql_texts(f.params):
                for ref in REF_RE.findall(text):
                    if ref == "TABLE":
                        continue
                    name_ = ref.split(".", 1)[1] if "." in ref else ref
                    if "." in ref and ref.split(".", 1)[0] not in _aliases_of(project, view.name):
                        out.append(f"{where}: ${{{ref}}} names a view this one is not queried as")
                    elif name_ not in fields:
                        out.append(f"{where}: ${{{ref}}} does not resolve")
            for d in f.params.get("drill_fields", []):
                if d.endswith("*"):
                    if d[:-1] not in view.sets:
                        out.append(f"{where}: drill set {d} is not defined")
                elif d not in fields:
                    out.append(f"{where}: drill field {d} does not resolve")
        for set_name, members in view.sets.items():
            for m in members:
                if m.endswith("*"):
                    if m[:-1] not in view.sets:
                        out.append(f"{view.name}: set {set_name} includes unknown set {m}")
                elif m not in fields and m not in groups:
                    out.append(f"{view.name}: set {set_name} lists unknown field {m}")
        for d in view.params.get("drill_fields", []) or []:
            if d.rstrip("*") not in fields and d.rstrip("*") not in view.sets:
                out.append(f"{view.name}: drill field {d} does not resolve")
    return out


def _aliases_of(project: Project, view_name: str) -> set[str]:
    return {e.alias for e in project.concrete_explores() if e.view_name == view_name}


def liquid_problems(project: Project) -> list[str]:
    """Liquid must parse, and the fields its conditions and date tags name
    must exist in every explore that queries the view."""
    out = []
    for view in project.views.values():
        texts = [(f"{view.name}.{n}", f.params.get("sql") or "") for n, f in view.fields().items()]
        texts.append((f"{view.name} sql_table_name", view.sql_table_name or ""))
        explores = [e for e in project.concrete_explores() if e.view_name == view.name]
        for where, text in texts:
            try:
                refs = liquid.references(text)
            except liquid.LiquidError as e:
                out.append(f"{view.files[0]}: {where}: {e}")
                continue
            for ex in explores:
                known = project.explore_fields(ex)
                for ref in refs:
                    if ref not in known:
                        out.append(f"{view.files[0]}: {where}: Liquid names {ref}, which explore {ex.name} lacks")
    return out


# --- model and explores -----------------------------------------------------

def model_problems(project: Project) -> list[str]:
    out = []
    model = project.model
    groups = {d["name"]: d for d in model.get("datagroups", [])}
    for name, d in groups.items():
        if "sql_trigger" not in d:
            out.append(f"datagroup {name}: no sql_trigger")
        if "max_cache_age" not in d:
            out.append(f"datagroup {name}: no max_cache_age")
        if "interval_trigger" in d:
            out.append(f"datagroup {name}: interval_trigger would override sql_trigger")
    if model.get("persist_with") not in groups:
        out.append(f"{project.model_file}: persist_with names no datagroup")
    for ex in project.explores.values():
        for agg in ex.params.get("aggregate_tables", []):
            trig = agg.get("materialization", {}).get("datagroup_trigger")
            if trig not in groups:
                out.append(f"explore {ex.name}: aggregate table {agg['name']} triggers on unknown datagroup {trig}")
    return out


def explore_problems(project: Project) -> list[str]:
    out = []
    for ex in project.concrete_explores():
        where = f"{ex.file}: explore {ex.name}"
        view = project.explore_view(ex)
        if view is None:
            out.append(f"{where}: view {ex.view_name} does not exist")
            continue
        if view.extension_required:
            out.append(f"{where}: view {view.name} is extension: required")
        fields = project.explore_fields(ex)
        for af in ex.access_filters:
            if af.get("field") not in fields:
                out.append(f"{where}: access filter field {af.get('field')} does not resolve")
        for flt in ex.params.get("always_filter", {}).get("filters__all", []):
            for item in flt:
                for k in item:
                    if k not in fields:
                        out.append(f"{where}: always_filter field {k} does not resolve")
        for agg in ex.params.get("aggregate_tables", []):
            for q in agg.get("queries", []):
                for k in (*q.get("dimensions", []), *q.get("measures", [])):
                    if k not in fields:
                        out.append(f"{where}: aggregate table {agg['name']} field {k} does not resolve")
                    elif fields[k].kind == "measure" and fields[k].type in ("percentile", "median", "count_distinct"):
                        out.append(f"{where}: aggregate table {agg['name']} rolls up {k}, which does not add up")
                # Without the access keys, filtered users' queries cannot use the rollup.
                for af in ex.access_filters:
                    if af["field"] not in q.get("dimensions", []):
                        out.append(f"{where}: aggregate table {agg['name']} lacks access filter field {af['field']}")
        has_percentile = any(f.type in ("percentile", "median") for f in view.fields().values() if f.kind == "measure")
        if has_percentile and ex.joins:
            out.append(f"{where}: joins would turn its percentiles into percentile_distinct")
    return out


def access_problems(project: Project) -> list[str]:
    """Every explore users can open must carry both access filters, and get
    them from an extension-required base it extends."""
    out = []
    concrete = project.concrete_explores()
    if not concrete:
        out.append("no explores")
    for ex in concrete:
        where = f"{ex.file}: explore {ex.name}"
        bases = [project.explores[n] for n in ex.chain[1:] if n in project.explores]
        if not any(b.extension_required for b in bases):
            out.append(f"{where}: does not extend an extension: required base explore")
        attrs = {af.get("user_attribute") for af in ex.access_filters}
        own_doc = next((e for e in project.files[ex.file].get("explores", []) if e["name"] == ex.name), {})
        own_attrs = {af.get("user_attribute") for af in own_doc.get("access_filters", [])}
        for attr in REQUIRED_ACCESS_ATTRIBUTES:
            if attr not in attrs:
                out.append(f"{where}: no access_filter on user attribute {attr}")
            elif attr in own_attrs:
                out.append(f"{where}: sets its own access_filter on {attr}; it belongs in the base")
    return out


def grant_problems(project: Project) -> list[str]:
    """client_id, subject and client_address are shown only through fields
    behind the identity grant; a distinct count shows no value and may
    read them freely."""
    out = []
    grants = {g["name"] for g in project.model.get("access_grants", [])}
    if IDENTITY_GRANT not in grants:
        out.append(f"{project.model_file}: access_grant {IDENTITY_GRANT} is missing")
    for view in project.views.values():
        for name, f in view.fields().items():
            sql = f.sql or ""
            for col in RESTRICTED_COLUMNS:
                if not re.search(rf"\$\{{TABLE\}}\.{col}\b|\$\{{{col}\}}", sql):
                    continue
                if IDENTITY_GRANT in f.params.get("required_access_grants", []):
                    continue
                if f.kind == "measure" and f.type == "count_distinct":
                    continue
                out.append(f"{view.files[0]}: {view.name}.{name} shows {col} without the {IDENTITY_GRANT} grant")
    return out


# --- columns ----------------------------------------------------------------

def used_columns(project: Project) -> set[tuple[str, str]]:
    """(table, column) for every column a view reads, through ${TABLE} or
    through the aliased table of a sql_table_name subquery."""
    out = set()
    for view in project.views.values():
        table_sql = view.sql_table_name or ""
        sources = set(re.findall(r"@\{SCHEMA_NAME\}\.@\{(\w+)\}(?:\s+AS\s+(\w+))?", table_sql))
        if not sources:
            continue
        if len(sources) != 1:
            raise ValueError(f"{view.name} reads {sources}: one table per view")
        ((const, sub_alias),) = sources
        table = TABLE_CONSTANTS[const]
        derived: set[str] = set()
        if sub_alias:
            out |= {(table, c) for c in re.findall(rf"\b{sub_alias}\.(\w+)", table_sql)}
            # Columns the subquery adds itself (AS name, or AS g(name)).
            derived = set(re.findall(r"\bAS\s+(\w+)", table_sql, re.I))
            derived |= set(re.findall(r"\bAS\s+\w+\((\w+)\)", table_sql, re.I))
        for f in view.fields().values():
            for col in re.findall(r"\$\{TABLE\}\.(\w+)", f.sql or ""):
                if col not in derived:
                    out.add((table, col))
    return out


def column_problems(project: Project, ddl_tables: dict[str, dict]) -> list[str]:
    """ddl_tables: label -> {table: [Column]} (see ddl.tables)."""
    out = []
    for label, tables in ddl_tables.items():
        for table, col in sorted(used_columns(project)):
            if col not in {c.name for c in tables.get(table, [])}:
                out.append(f"{label}: {table} has no column {col}, which the views read")
    return out


# --- dashboards -------------------------------------------------------------

def dashboard_problems(project: Project) -> list[str]:
    out = []
    for rel, doc in project.dashboards.items():
        if not isinstance(doc, list):
            continue
        for dash in doc:
            name = dash.get("dashboard")
            where = f"{rel}: {name}"
            if dash.get("layout") != "newspaper":
                out.append(f"{where}: layout is not newspaper")
            filter_names = set()
            for flt in dash.get("filters", []) or []:
                filter_names.add(flt.get("name"))
                if flt.get("type") == "field_filter":
                    out += _explore_field_problems(project, f"{where} filter {flt.get('name')}",
                                                   flt.get("model"), flt.get("explore"), [flt.get("field")])
            names = set()
            for el in dash.get("elements", []) or []:
                ew = f"{where} element {el.get('name')}"
                if el.get("name") in names:
                    out.append(f"{ew}: duplicate element name")
                names.add(el.get("name"))
                for k in ("row", "col", "width", "height"):
                    if not isinstance(el.get(k), int):
                        out.append(f"{ew}: {k} must be a whole number")
                if isinstance(el.get("col"), int) and isinstance(el.get("width"), int) and el["col"] + el["width"] > 24:
                    out.append(f"{ew}: runs past the 24-column grid")
                if el.get("type") == "text":
                    continue
                refs = list(el.get("fields", []))
                refs += el.get("pivots", []) or []
                refs += el.get("fill_fields", []) or []
                refs += [s.split()[0] for s in el.get("sorts", []) or []]
                refs += list((el.get("filters") or {}).keys())
                listen = el.get("listen") or {}
                for fname, target in listen.items():
                    if fname not in filter_names:
                        out.append(f"{ew}: listens to unknown dashboard filter {fname}")
                    refs.append(target)
                out += _explore_field_problems(project, ew, el.get("model"), el.get("explore"), refs)
                for r in (el.get("pivots") or []) + (el.get("fill_fields") or []):
                    if r not in el.get("fields", []):
                        out.append(f"{ew}: {r} is pivoted or filled but not among its fields")
    return out


def _explore_field_problems(project, where, model, explore, refs) -> list[str]:
    out = []
    model = project.substitute_constants(model or "")
    explore = project.substitute_constants(explore or "")
    if model != project.model_name:
        return [f"{where}: model {model!r} is not {project.model_name!r}"]
    ex = project.explores.get(explore)
    if ex is None or ex.extension_required:
        return [f"{where}: explore {explore!r} is not an explore users can open"]
    fields = project.explore_fields(ex)
    for r in refs:
        if r not in fields:
            out.append(f"{where}: field {r} does not resolve in explore {explore}")
    return out


def all_problems(project: Project) -> list[str]:
    out = []
    for check in (load_problems, parse_problems, constant_problems, include_problems, view_problems,
                  liquid_problems, model_problems, explore_problems, access_problems, grant_problems,
                  dashboard_problems):
        out += check(project)
    return out
