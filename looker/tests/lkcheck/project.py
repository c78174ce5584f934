"""Loads the LookML project as Looker would assemble it.

Parses every .lkml file with lkml and every .dashboard.lookml with PyYAML,
applies view refinements (view: +name) and then extends, merges explores
along their extends chains, and follows include statements from the model.
Problems found while loading (parse errors, unknown extends) are kept in
`Project.problems` rather than raised, so a checker can report them all.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import lkml
import yaml

# Field kinds as lkml names their lists.
FIELD_LISTS = {
    "dimensions": "dimension",
    "dimension_groups": "dimension_group",
    "measures": "measure",
    "filters": "filter",
    "parameters": "parameter",
}

CONSTANT_RE = re.compile(r"@\{(\w+)\}")


@dataclass
class Field:
    """One field a view offers; a dimension_group yields one per timeframe."""

    name: str
    kind: str  # dimension, measure, filter, parameter
    params: dict
    group: str | None = None  # the dimension_group it comes from
    timeframe: str | None = None

    @property
    def type(self) -> str:
        return self.params.get("type", "string" if self.kind == "dimension" else "")

    @property
    def sql(self) -> str | None:
        return self.params.get("sql")

    @property
    def hidden(self) -> bool:
        return self.params.get("hidden") == "yes"


@dataclass
class View:
    name: str
    params: dict = field(default_factory=dict)
    # (kind, name) -> params, before dimension groups are expanded.
    raw_fields: dict = field(default_factory=dict)
    sets: dict = field(default_factory=dict)
    extends: list = field(default_factory=list)
    files: list = field(default_factory=list)

    @property
    def sql_table_name(self) -> str | None:
        return self.params.get("sql_table_name")

    @property
    def extension_required(self) -> bool:
        return self.params.get("extension") == "required"

    def fields(self) -> dict[str, Field]:
        """Every field by the name LookML references it by."""
        out: dict[str, Field] = {}
        hidden_default = self.params.get("fields_hidden_by_default") == "yes"
        for (kind, name), params in self.raw_fields.items():
            params = dict(params)
            if hidden_default and "hidden" not in params:
                params["hidden"] = "yes"
            if kind == "dimension_group":
                if params.get("type", "time") != "time":
                    raise ValueError(f"{self.name}.{name}: only type: time groups are supported")
                for tf in params.get("timeframes", []):
                    out[f"{name}_{tf}"] = Field(f"{name}_{tf}", "dimension", params, group=name, timeframe=tf)
            else:
                out[name] = Field(name, kind, params)
        return out


@dataclass
class Explore:
    name: str
    params: dict
    file: str
    chain: list  # the explore and every explore it extends, nearest first

    @property
    def extension_required(self) -> bool:
        return self.params.get("extension") == "required"

    @property
    def alias(self) -> str:
        # view_name names the alias (and the view, without from:); from:
        # alone makes the explore's own name the alias.
        if "view_name" in self.params:
            return self.params["view_name"]
        return self.name

    @property
    def view_name(self) -> str:
        return self.params.get("from") or self.params.get("view_name") or self.name

    @property
    def access_filters(self) -> list[dict]:
        return self.params.get("access_filters", [])

    @property
    def joins(self) -> list[dict]:
        return self.params.get("joins", [])


class Project:
    """The parsed project rooted at `root` (the looker/ folder)."""

    def __init__(self, root: Path, constant_overrides: dict | None = None):
        self.root = Path(root)
        self.problems: list[str] = []
        self.files: dict[str, dict] = {}  # relative path -> lkml dict
        self.texts: dict[str, str] = {}
        self.dashboards: dict[str, list] = {}
        self._load_files()
        self.constants = self._constants(constant_overrides or {})
        self.model_file, self.model_name, self.model = self._model()
        self.views = self._views()
        self.explores = self._explores()

    # --- loading -----------------------------------------------------------

    def _project_files(self):
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if rel.startswith("tests/") or not path.is_file():
                continue
            yield rel, path

    def _load_files(self):
        for rel, path in self._project_files():
            if rel.endswith(".dashboard.lookml"):
                text = path.read_text()
                self.texts[rel] = text
                try:
                    self.dashboards[rel] = yaml.safe_load(text)
                except yaml.YAMLError as e:
                    self.problems.append(f"{rel}: not valid YAML: {e}")
            elif rel.endswith(".lkml"):
                text = path.read_text()
                self.texts[rel] = text
                try:
                    self.files[rel] = lkml.load(text)
                except Exception as e:  # lkml raises SyntaxError and others
                    self.problems.append(f"{rel}: lkml cannot parse it: {e}")

    def _constants(self, overrides: dict) -> dict[str, dict]:
        manifest = self.files.get("manifest.lkml", {})
        out = {}
        for c in manifest.get("constants", []):
            out[c["name"]] = {"value": c.get("value"), "export": c.get("export")}
        for name, value in overrides.items():
            if name not in out:
                raise KeyError(f"override of undeclared constant {name}")
            out[name] = dict(out[name], value=value)
        return out

    def _model(self):
        models = [r for r in self.files if r.endswith(".model.lkml")]
        if len(models) != 1:
            self.problems.append(f"expected one .model.lkml file, found {models}")
            return None, None, {}
        rel = models[0]
        return rel, Path(rel).name[: -len(".model.lkml")], self.files[rel]

    # --- views -------------------------------------------------------------

    def _view_docs(self):
        for rel, data in self.files.items():
            for v in data.get("views", []):
                yield rel, v

    def _absorb(self, view: View, doc: dict, rel: str):
        """Merges one view or refinement block into `view`, parameter by
        parameter, as a refinement does."""
        view.files.append(rel)
        for key, value in doc.items():
            if key == "name":
                continue
            if key in FIELD_LISTS:
                kind = FIELD_LISTS[key]
                for f in value:
                    if not isinstance(f, dict) or "name" not in f:
                        self.problems.append(f"{rel}: view {view.name}: a {kind} without a name")
                        continue
                    k = (kind, f["name"])
                    merged = dict(view.raw_fields.get(k, {}))
                    merged.update({p: v for p, v in f.items() if p != "name"})
                    view.raw_fields[k] = merged
            elif key == "sets":
                for s in value:
                    view.sets[s["name"]] = list(s.get("fields", []))
            elif key in ("extends", "extends__all"):
                lists = value if key == "extends__all" else [value]
                for names in lists:
                    for n in names:
                        if n not in view.extends:
                            view.extends.append(n)
            else:
                view.params[key] = value

    def _views(self) -> dict[str, View]:
        bases: dict[str, View] = {}
        refinements: list[tuple[str, dict]] = []
        for rel, doc in self._view_docs():
            name = doc["name"]
            if name.startswith("+"):
                refinements.append((rel, doc))
            elif name in bases:
                self.problems.append(f"{rel}: view {name} is also defined in {bases[name].files[0]}")
            else:
                v = View(name)
                self._absorb(v, doc, rel)
                bases[name] = v
        # Refinements apply to the view itself, before anything extends it.
        for rel, doc in refinements:
            target = doc["name"][1:]
            if target not in bases:
                self.problems.append(f"{rel}: refinement of unknown view {target}")
                continue
            self._absorb(bases[target], doc, rel)
        resolved: dict[str, View] = {}

        def resolve(name: str, stack: tuple = ()) -> View | None:
            if name in resolved:
                return resolved[name]
            if name not in bases:
                return None
            if name in stack:
                self.problems.append(f"view {name}: extends itself through {stack}")
                return bases[name]
            own = bases[name]
            merged = View(name)
            for parent in own.extends:
                p = resolve(parent, stack + (name,))
                if p is None:
                    self.problems.append(f"view {name} ({own.files[0]}): extends unknown view {parent}")
                    continue
                merged.params.update({k: v for k, v in p.params.items() if k != "extension"})
                for k, v in p.raw_fields.items():
                    merged.raw_fields[k] = dict(v)
                merged.sets.update(p.sets)
            merged.params.update(own.params)
            for k, v in own.raw_fields.items():
                # Like a refinement, the extending view's parameters win
                # one by one over the inherited field's.
                base = dict(merged.raw_fields.get(k, {}))
                base.update(v)
                merged.raw_fields[k] = base
            merged.sets.update(own.sets)
            merged.extends = list(own.extends)
            merged.files = list(own.files)
            resolved[name] = merged
            return merged

        for name in bases:
            resolve(name)
        return resolved

    # --- explores ----------------------------------------------------------

    def _explore_docs(self):
        for rel, data in self.files.items():
            for e in data.get("explores", []):
                yield rel, e

    def _explores(self) -> dict[str, Explore]:
        docs: dict[str, tuple[str, dict]] = {}
        for rel, e in self._explore_docs():
            if e["name"] in docs:
                self.problems.append(f"{rel}: explore {e['name']} is also defined in {docs[e['name']][0]}")
            docs[e["name"]] = (rel, e)
        out: dict[str, Explore] = {}

        def resolve(name: str, stack: tuple = ()) -> Explore | None:
            if name in out:
                return out[name]
            if name not in docs or name in stack:
                return None
            rel, doc = docs[name]
            params: dict = {}
            chain = [name]
            for parent in self._extends(doc):
                p = resolve(parent, stack + (name,))
                if p is None:
                    self.problems.append(f"explore {name} ({rel}): extends unknown explore {parent}")
                    continue
                chain += [c for c in p.chain if c not in chain]
                for k, v in p.params.items():
                    if k in ("extension", "name"):
                        continue
                    if isinstance(v, list) and k in ("access_filters", "joins", "aggregate_tables"):
                        params[k] = params.get(k, []) + copy.deepcopy(v)
                    else:
                        params[k] = copy.deepcopy(v)
            for k, v in doc.items():
                if k in ("name", "extends", "extends__all"):
                    continue
                if isinstance(v, list) and k in ("access_filters", "joins", "aggregate_tables"):
                    params[k] = params.get(k, []) + copy.deepcopy(v)
                else:
                    params[k] = copy.deepcopy(v)
            ex = Explore(name, params, rel, chain)
            out[name] = ex
            return ex

        for name in docs:
            resolve(name)
        return out

    @staticmethod
    def _extends(doc: dict) -> list[str]:
        if "extends__all" in doc:
            return [n for names in doc["extends__all"] for n in names]
        return list(doc.get("extends", []))

    # --- questions ---------------------------------------------------------

    def concrete_explores(self) -> list[Explore]:
        return [e for e in self.explores.values() if not e.extension_required]

    def explore_view(self, explore: Explore) -> View | None:
        return self.views.get(explore.view_name)

    def explore_fields(self, explore: Explore) -> dict[str, Field]:
        """alias.field -> Field, for the explore's base view (the project's
        explores have no joins)."""
        view = self.explore_view(explore)
        if view is None:
            return {}
        return {f"{explore.alias}.{n}": f for n, f in view.fields().items()}

    def substitute_constants(self, text: str) -> str:
        def one(m):
            name = m.group(1)
            if name not in self.constants:
                raise KeyError(f"undeclared constant @{{{name}}}")
            return str(self.constants[name]["value"])

        return CONSTANT_RE.sub(one, text)

    # --- includes ----------------------------------------------------------

    def include_targets(self, pattern: str, from_file: str) -> list[str]:
        """Project files an include statement names."""
        if pattern.startswith("//"):
            return []  # another project's files; none here
        base = "" if pattern.startswith("/") else str(Path(from_file).parent)
        pat = (pattern.lstrip("/") if pattern.startswith("/") else f"{base}/{pattern}").lstrip("./")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        # An include may leave off the .lkml or .lookml ending.
        full = re.compile(rf"^{rx}(?:\.lkml|\.lookml)?$")
        return [rel for rel in self.texts if full.match(rel)]

    def includes_of(self, rel: str) -> list[str]:
        if rel in self.files:
            return list(self.files[rel].get("includes", []))
        return []

    def reachable_files(self) -> set[str]:
        """Files the model pulls in, directly or through other includes."""
        if self.model_file is None:
            return set()
        seen = {self.model_file}
        todo = [self.model_file]
        while todo:
            rel = todo.pop()
            for pattern in self.includes_of(rel):
                for target in self.include_targets(pattern, rel):
                    if target not in seen:
                        seen.add(target)
                        todo.append(target)
        return seen
