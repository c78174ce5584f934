"""The tables and columns a CREATE TABLE file declares.

Reads the statements textually (comments stripped, parentheses balanced),
which is enough for the column checks and works for dialects the suite
cannot run (BigQuery, Snowflake).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool


def strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def statements(sql: str) -> list[str]:
    """Statements split on semicolons outside quotes."""
    out, cur, quote = [], "", None
    for c in strip_comments(sql):
        if quote:
            cur += c
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            cur += c
        elif c == ";":
            if cur.strip():
                out.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur.strip())
    return out


def _split_top(body: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for c in body:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _column(item: str) -> Column:
    words = item.split(None, 1)
    rest = words[1] if len(words) > 1 else ""
    not_null = bool(re.search(r"\bNOT\s+NULL\b", rest, re.I))
    typ = re.sub(r"\s+NOT\s+NULL\b.*$", "", rest, flags=re.I).strip()
    return Column(words[0], typ, not_null)


def _view_columns(select: str) -> list[Column]:
    """The output columns of a view's select list (types unknown): each
    item's alias, or the column it names."""
    depth, end = 0, len(select)
    for m in re.finditer(r"[()]|\bFROM\b", select, re.I):
        if m.group() == "(":
            depth += 1
        elif m.group() == ")":
            depth -= 1
        elif depth == 0:
            end = m.start()
            break
    cols = []
    for item in _split_top(select[:end]):
        alias = re.search(r"\bAS\s+(\w+)\s*$", item, re.I)
        name = alias.group(1) if alias else item.split(".")[-1].strip()
        cols.append(Column(name, "", False))
    return cols


def tables(sql: str) -> dict[str, list[Column]]:
    """table name (without schema) -> columns in order, after every
    CREATE TABLE and ALTER TABLE ... ADD COLUMN in the text."""
    out: dict[str, list[Column]] = {}
    for stmt in statements(sql):
        m = re.match(r"DROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?([\w.]+)\s*$", stmt, re.I)
        if m:
            out.pop(m.group(1).split(".")[-1], None)
            continue
        m = re.match(r"CREATE\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)\s+AS\s+SELECT\s+(.*)$", stmt, re.I | re.S)
        if m:
            out[m.group(1).split(".")[-1]] = _view_columns(m.group(2))
            continue
        m = re.match(r"ALTER\s+TABLE\s+([\w.]+)\s+ADD\s+COLUMN\s+(.*)$", stmt, re.I | re.S)
        if m:
            out[m.group(1).split(".")[-1]].append(_column(m.group(2).strip()))
            continue
        m = re.match(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)\s*\(", stmt, re.I)
        if not m:
            continue
        name = m.group(1).split(".")[-1]
        depth, start = 0, m.end() - 1
        for i in range(start, len(stmt)):
            if stmt[i] == "(":
                depth += 1
            elif stmt[i] == ")":
                depth -= 1
                if depth == 0:
                    body = stmt[start + 1 : i]
                    break
        else:
            raise ValueError(f"unbalanced CREATE TABLE {name}")
        cols = []
        for item in _split_top(body):
            first = item.split()[0].upper()
            if first in ("PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK", "INDEX"):
                continue
            cols.append(_column(item))
        out[name] = cols
    return out


def file_tables(path) -> dict[str, list[Column]]:
    """One file, or a list of files applied in order (a store's
    migrations)."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    return tables("\n".join(Path(p).read_text() for p in paths))
