"""The batch matcher (literal and regex triggers over joined columns) picks exactly the
records the record predicate picks, whatever the values hold: separators, newlines, case,
characters whose lower case is longer, numbers, booleans, missing fields."""

from __future__ import annotations

import ipaddress
import random
import re

from streamproc.detectors.columns import EventBatch
from streamproc.events import Event
from streamproc.rules.predicates import All, Any_, BatchMatcher, Leaf, Not, record_predicate

ATOMS = [
    "a",
    "A",
    "ab",
    "b",
    "\x00",
    "\n",
    "İ",
    "i̇",
    "/",
    "%",
    "(",
    "union",
    "UNION",
    " ",
    "x\x00y",
    "1",
    "^",
    "$",
]


def value(rnd: random.Random) -> object:
    kind = rnd.random()
    if kind < 0.6:
        return "".join(rnd.choice(ATOMS) for _ in range(rnd.randint(0, 5)))
    if kind < 0.7:
        return rnd.choice([1, 2, 404, 1.0, 2.5])
    if kind < 0.8:
        return rnd.choice([True, False])
    if kind < 0.9:
        return rnd.choice(["10.1.2.3", "192.0.2.7", "2001:db8::1"])
    return None


def leaf(rnd: random.Random) -> Leaf:
    name = rnd.choice(["f", "g"])
    op = rnd.choice(
        [
            "text_eq",
            "contains",
            "startswith",
            "endswith",
            "eq",
            "in",
            "regex",
            "gt",
            "lte",
            "exists",
            "null",
            "cidr",
            "ne",
        ]
    )
    needle = "".join(rnd.choice(ATOMS) for _ in range(rnd.randint(1, 3)))
    if op in ("text_eq", "contains", "startswith", "endswith"):
        return Leaf(name, op, needle, cased=rnd.random() < 0.5)
    if op in ("eq", "ne"):
        return Leaf(name, op, rnd.choice([needle, 1, True, 404]))
    if op == "in":
        return Leaf(name, "in", frozenset([needle, rnd.choice(ATOMS), 2]))
    if op == "regex":
        pattern = rnd.choice(
            ["^a", "b$", "un.on", "a\\s*b", "^$", "[^a]b", "(?i)union", "x.y", "\\d+"]
        )
        return Leaf(name, "regex", re.compile(pattern, rnd.choice([0, re.I, re.M])))
    if op in ("gt", "lte"):
        return Leaf(name, op, rnd.choice([1, 2, 100]))
    if op == "cidr":
        return Leaf(name, "cidr", (ipaddress.ip_network("10.0.0.0/8"),))
    return Leaf(name, op, rnd.random() < 0.5)


def tree(rnd: random.Random, depth: int = 0) -> object:
    if depth > 2 or rnd.random() < 0.4:
        return leaf(rnd)
    kind = rnd.choice(["all", "any", "not"])
    if kind == "not":
        return Not(tree(rnd, depth + 1))
    items = tuple(tree(rnd, depth + 1) for _ in range(rnd.randint(1, 3)))
    return All(items) if kind == "all" else Any_(items)


def test_the_batch_matcher_picks_exactly_what_the_record_predicate_picks() -> None:
    rnd = random.Random(20261129)
    for _ in range(60):
        conditions = [tree(rnd) for _ in range(12)]
        rows = []
        for _ in range(rnd.randint(0, 60)):
            row = {"f": value(rnd), "g": value(rnd)}
            rows.append({k: v for k, v in row.items() if v is not None or rnd.random() < 0.5})
        batch = EventBatch([Event("x", float(i), row, "t", 0, i) for i, row in enumerate(rows)])
        got = BatchMatcher(conditions).matches(batch)
        for condition, picked in zip(conditions, got, strict=True):
            pred = record_predicate(condition)
            assert picked == [i for i, row in enumerate(rows) if pred(row)], condition
