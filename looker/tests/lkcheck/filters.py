"""Looker filter expressions as SQL.

Access filters apply a user attribute's value to a field as a Looker
filter expression, and dashboard tiles filter the same way. Looker's own
translation is not available offline; this follows its documented syntax
for the cases the project and its README use:

- strings: FOO (equals), FOO,BAR (either), %FOO% / FOO% / %FOO (LIKE,
  with _ matching one character), -FOO and -%FOO% (negations, AND-ed),
  EMPTY and NULL (and their negations), ^ escaping the next character;
- numbers: 5, 5,6, >5, >=5, <5, <=5, NOT 5, NULL, NOT NULL;
- yesno: Yes or No.

Positive terms are OR-ed, negative terms AND-ed, and the two groups
AND-ed, as Looker documents.
"""

from __future__ import annotations

import re


def _split(expr: str) -> list[str]:
    """Splits on commas that ^ does not escape; keeps the escapes."""
    terms, cur, i = [], "", 0
    while i < len(expr):
        c = expr[i]
        if c == "^" and i + 1 < len(expr):
            cur += expr[i : i + 2]
            i += 2
            continue
        if c == ",":
            terms.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    terms.append(cur)
    return [t.strip() for t in terms if t.strip() != ""]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _like_pattern(term: str) -> tuple[str, bool]:
    """The term as a LIKE pattern (\\ escapes), and whether it has a
    wildcard."""
    out, wild, i = "", False, 0
    while i < len(term):
        c = term[i]
        if c == "^" and i + 1 < len(term):
            nxt = term[i + 1]
            out += "\\" + nxt if nxt in "%_\\" else nxt
            i += 2
            continue
        if c in "%_":
            wild = True
            out += c
        elif c == "\\":
            out += "\\\\"
        else:
            out += c
        i += 1
    return out, wild


def _unescape(term: str) -> str:
    return re.sub(r"\^(.)", r"\1", term)


def string_sql(expr: str, col: str) -> str:
    pos, neg = [], []
    for term in _split(expr):
        negate = term.startswith("-")
        body = term[1:] if negate else term
        if body == "EMPTY":
            cond = f"({col} IS NULL OR {col} = '')"
        elif body == "NULL":
            cond = f"{col} IS NULL"
        else:
            pattern, wild = _like_pattern(body)
            if wild:
                # PostgreSQL and ClickHouse both take a backslash as the LIKE escape.
                cond = f"{col} LIKE {_quote(pattern)}"
            else:
                cond = f"{col} = {_quote(_unescape(body))}"
        if negate:
            # Looker keeps NULLs out of "is not" unless NULL is the term.
            neg.append(f"NOT ({cond})" if body in ("NULL", "EMPTY") else f"({col} IS NULL OR NOT ({cond}))")
        else:
            pos.append(cond)
    return _combine(pos, neg)


def number_sql(expr: str, col: str) -> str:
    pos, neg = [], []
    for term in _split(expr):
        t = term.upper()
        if t == "NULL":
            pos.append(f"{col} IS NULL")
        elif t == "NOT NULL":
            neg.append(f"{col} IS NOT NULL")
        elif t.startswith("NOT "):
            neg.append(f"{col} <> {float(term[4:])!r}")
        else:
            m = re.match(r"^(>=|<=|>|<|=)?\s*(-?[\d.]+)$", term)
            if not m:
                raise ValueError(f"unsupported number filter {term!r}")
            op = m.group(1) or "="
            pos.append(f"{col} {op} {m.group(2)}")
    return _combine(pos, neg)


def yesno_sql(expr: str, col: str) -> str:
    if expr not in ("Yes", "No"):
        raise ValueError(f"yesno filter must be Yes or No, got {expr!r}")
    return f"{col} = '{expr}'"


def _combine(pos: list[str], neg: list[str]) -> str:
    parts = []
    if pos:
        parts.append("(" + " OR ".join(pos) + ")")
    parts += neg
    return "(" + " AND ".join(parts) + ")" if parts else "(1 = 1)"


def field_filter_sql(field_type: str, expr: str, col: str) -> str:
    if field_type == "yesno":
        return yesno_sql(expr, col)
    if field_type == "number" or field_type in ("sum", "count", "count_distinct", "average", "max", "min", "percentile"):
        return number_sql(expr, col)
    return string_sql(expr, col)
