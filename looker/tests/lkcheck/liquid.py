"""The subset of Liquid the project's SQL uses, evaluated as Looker would.

Supported: {% if %} / {% elsif %} / {% else %} / {% endif %} (nested), with
conditions built from `a == 'x'`, `a != 'x'`, `a contains 'x'`, a bare
variable, `and` and `or` (evaluated right to left, as Liquid does); the
variables `_dialect._name`, `view.field._is_selected` and
`view.field._is_filtered`; and the tags {% date_start view.field %} and
{% date_end view.field %}. Anything else is an error, so a typo cannot
silently render as an empty string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG_RE = re.compile(r"\{%-?\s*(.*?)\s*-?%\}|\{\{-?\s*(.*?)\s*-?\}\}", re.S)
FIELD_REF_RE = re.compile(r"^(\w+)\.(\w+)\.(_is_selected|_is_filtered)$")


class LiquidError(ValueError):
    pass


@dataclass
class Context:
    """What a query tells Liquid: the dialect, the fields it selects and
    filters on (as alias.field), and the date window of time filters."""

    dialect_name: str
    selected: set = field(default_factory=set)
    filtered: set = field(default_factory=set)
    # alias.field -> (start, end) as SQL literals, None when open.
    date_bounds: dict = field(default_factory=dict)


@dataclass
class Refs:
    """Field references a template makes (for the reference checks)."""

    fields: set = field(default_factory=set)  # alias.field


def _tokens(text: str):
    pos = 0
    for m in TAG_RE.finditer(text):
        if m.start() > pos:
            yield "text", text[pos : m.start()]
        if m.group(2) is not None:
            yield "output", m.group(2)
        else:
            yield "tag", m.group(1)
        pos = m.end()
    if pos < len(text):
        yield "text", text[pos:]


def _value(expr: str, ctx: Context | None, refs: Refs | None):
    expr = expr.strip()
    if (expr.startswith("'") and expr.endswith("'")) or (expr.startswith('"') and expr.endswith('"')):
        return expr[1:-1]
    if expr == "_dialect._name":
        return ctx.dialect_name if ctx else ""
    m = FIELD_REF_RE.match(expr)
    if m:
        ref = f"{m.group(1)}.{m.group(2)}"
        if refs is not None:
            refs.fields.add(ref)
        if ctx is None:
            return False
        return ref in (ctx.selected if m.group(3) == "_is_selected" else ctx.filtered)
    if expr in ("true", "false"):
        return expr == "true"
    raise LiquidError(f"unsupported Liquid expression: {expr!r}")


def _condition(cond: str, ctx: Context | None, refs: Refs | None) -> bool:
    # Liquid has no precedence: it folds and/or from the right.
    parts = re.split(r"\s+(and|or)\s+", cond.strip(), maxsplit=1)
    if len(parts) == 3:
        left = _condition(parts[0], ctx, refs)
        right = _condition(parts[2], ctx, refs)
        return (left and right) if parts[1] == "and" else (left or right)
    m = re.match(r"^(.*?)\s*(==|!=|contains)\s*(.*)$", cond.strip())
    if m:
        a, op, b = _value(m.group(1), ctx, refs), m.group(2), _value(m.group(3), ctx, refs)
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        return isinstance(a, str) and isinstance(b, str) and b in a
    return bool(_value(cond, ctx, refs))


def render(text: str, ctx: Context | None, refs: Refs | None = None) -> str:
    """Renders `text`. With ctx None, walks every branch and only collects
    references into `refs` (the output is then meaningless)."""
    out: list[str] = []
    # Stack of [emitting_now, a_branch_was_taken, parent_emitting].
    stack: list[list[bool]] = []

    def emitting() -> bool:
        return all(s[0] for s in stack) if ctx is not None else True

    for kind, value in _tokens(text):
        if kind == "text":
            if emitting():
                out.append(value)
            continue
        if kind == "output":
            raise LiquidError(f"unsupported Liquid output: {{{{ {value} }}}}")
        word, _, rest = value.partition(" ")
        if word == "if":
            parent = emitting()
            taken = _condition(rest, ctx, refs)
            stack.append([taken, taken, parent])
        elif word == "elsif":
            if not stack:
                raise LiquidError("elsif without if")
            top = stack[-1]
            hit = _condition(rest, ctx, refs)
            top[0] = (not top[1]) and hit
            top[1] = top[1] or hit
        elif word == "else":
            if not stack:
                raise LiquidError("else without if")
            top = stack[-1]
            top[0] = not top[1]
            top[1] = True
        elif word == "endif":
            if not stack:
                raise LiquidError("endif without if")
            stack.pop()
        elif word in ("date_start", "date_end"):
            ref = rest.strip()
            if not re.match(r"^\w+\.\w+$", ref):
                raise LiquidError(f"{word} needs view.field, got {ref!r}")
            if refs is not None:
                refs.fields.add(ref)
            if emitting():
                if ctx is None:
                    out.append("NULL")
                else:
                    bounds = ctx.date_bounds.get(ref)
                    lit = None if bounds is None else bounds[0 if word == "date_start" else 1]
                    out.append("NULL" if lit is None else lit)
        else:
            raise LiquidError(f"unsupported Liquid tag: {{% {value} %}}")
    if stack:
        raise LiquidError("if without endif")
    return "".join(out)


def references(text: str) -> set[str]:
    """alias.field names a template's conditions and date tags use."""
    refs = Refs()
    render(text, None, refs)
    return refs.fields

