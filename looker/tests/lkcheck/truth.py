"""What the traffic generator says the tables hold.

The seed tool writes one JSON object per stored request (its ground
truth); these helpers compute from it the numbers a pinned query must
return, independently of SQL.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path


def load(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def percentile_cont(values: list[float], p: float) -> float | None:
    """PostgreSQL's PERCENTILE_CONT: linear interpolation between the two
    nearest ranks, over the non-null values."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    pos = p * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def group(rows, key):
    out = defaultdict(list)
    for r in rows:
        out[key(r)].append(r)
    return out


def weight(rows) -> float:
    return sum(r["sample_weight"] for r in rows)


def latency_total_ms(r) -> float:
    return r["latency_total_us"] / 1000.0


def p95_total_latency_by_route(rows) -> dict:
    return {k: percentile_cont([latency_total_ms(r) for r in g], 0.95) for k, g in group(rows, lambda r: r["route_name"]).items()}


def error_5xx_rate_by_consumer_group(rows) -> dict:
    """One row per (request, group), ungrouped requests under None."""
    by = defaultdict(list)
    for r in rows:
        for g in r["consumer_groups"] or [None]:
            by[g].append(r)
    return {g: weight([r for r in rs if r["status"] >= 500]) / weight(rs) for g, rs in by.items()}


def auth_failures_by(rows, column) -> dict:
    out = defaultdict(float)
    for r in rows:
        if r["status"] in (401, 403):
            out[r[column]] += r["sample_weight"]
    return dict(out)
