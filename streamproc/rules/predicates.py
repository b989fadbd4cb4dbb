"""Conditions over a record, compiled once: a small tree, a record predicate, a batch matcher.

Rule files (``filter:``, rules.files) and Sigma detections (rules.sigma) both end here: they
build a ``Node`` tree once, at load time, and never look at YAML or pySigma objects again.

    Leaf(field, op, value)      one test of one field (``field`` None: any string field, as a
                                Sigma keyword); ``op`` one of OPS
    All(items), Any_(items), Not(item)

``record_predicate(node)`` turns a tree into nested closures over a record's ``data``.

``BatchMatcher`` judges many trees over one EventBatch at once, which is what lets a hundred
Sigma rules cost little on a stream that rarely matches them. Every string test that a tree
*needs* (a literal that must occur for the tree to hold: an All needs one of its items, an
Any_ all of them) is a *trigger*. Per batch and per field, the field's values are joined into
one string (lower-cased once for case-insensitive tests) and each distinct trigger literal is
searched there by ``str.find``, in C::

    endpoint column:  "/a?id=1", "/b", "/c?q=union select"
    joined:           \\0/a?id=1\\0/b\\0/c?q=union select\\0      (lower-cased once)
    "union" found at offset 17 -> event 2; not found again -> one scan of the batch

    eq "x"          needle "\\0x\\0"      startswith "x"  needle "\\0x"
    endswith "x"    needle "x\\0"        contains "x"    needle "x"

Only the events a trigger finds are given to the tree's record predicate, which decides;
a separator inside a value can only add a candidate, never lose one. A tree without a
trigger (a regex, a comparison, a NOT alone) is given every event.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import eq, ge, gt, le, lt
from typing import Any

from ..detectors.columns import _DATA, EventBatch, FrameBatch
from ..events import Event

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

# eq: Python ==; in: one of a set; text_*: a value's text (see ``text``), case-folded unless
# ``cased``; gt/gte/lt/lte: numbers; regex: re.search over the text; exists: present and not
# None (value True) or absent (False); null: absent or None; cidr: an IP address in a network
OPS = (
    "eq",
    "ne",
    "in",
    "text_eq",
    "contains",
    "startswith",
    "endswith",
    "gt",
    "gte",
    "lt",
    "lte",
    "regex",
    "exists",
    "null",
    "cidr",
)
_TEXT_OPS = ("text_eq", "contains", "startswith", "endswith")
SEP = "\x00"


@dataclass(frozen=True, slots=True)
class Leaf:
    field: str | None
    op: str
    value: Any = None
    cased: bool = False


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Any_:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Leaf | All | Any_ | Not
TRUE: Node = All(())


def text(value: Any) -> str:
    """The text a string test reads: a string as is, true/false for booleans, else str()."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def number(value: Any) -> float | None:
    """A value as a number for comparisons (a numeric string counts), else None."""
    if type(value) is int or type(value) is float:
        return value
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def fields_of(node: Node) -> set[str]:
    """The fields a tree reads (keywords read none by name)."""
    if isinstance(node, Leaf):
        return {node.field} if node.field is not None else set()
    if isinstance(node, Not):
        return fields_of(node.item)
    out: set[str] = set()
    for item in node.items:
        out |= fields_of(item)
    return out


# -- a record predicate ---------------------------------------------------------------------


def record_predicate(node: Node) -> Predicate:
    """``node`` as a function of a record's data (closures built once)."""
    if isinstance(node, All):
        preds = [record_predicate(i) for i in node.items]
        if not preds:
            return lambda d: True
        if len(preds) == 1:
            return preds[0]
        if len(preds) == 2:
            a, b = preds
            return lambda d: a(d) and b(d)
        return lambda d: all(p(d) for p in preds)
    if isinstance(node, Any_):
        preds = [record_predicate(i) for i in node.items]
        if not preds:
            return lambda d: False
        if len(preds) == 1:
            return preds[0]
        if len(preds) == 2:
            a, b = preds
            return lambda d: a(d) or b(d)
        return lambda d: any(p(d) for p in preds)
    if isinstance(node, Not):
        inner = record_predicate(node.item)
        return lambda d: not inner(d)
    if node.field is None:
        return _keyword(node)
    return _leaf(node)


def _keyword(leaf: Leaf) -> Predicate:
    test = _value_test(leaf)

    def keyword(d: Record) -> bool:
        return any(type(v) is str and test(v) for v in d.values())

    return keyword


def _leaf(leaf: Leaf) -> Predicate:
    name = leaf.field or ""
    op = leaf.op
    get: Callable[[Record], Any] = (
        (lambda d: d.get(name)) if "." not in name else (lambda d: _dotted(d, name))
    )
    if op == "exists":
        want = bool(leaf.value)
        return lambda d: (get(d) is not None) is want
    if op == "null":
        return lambda d: get(d) is None
    test = _value_test(leaf)

    def check(d: Record) -> bool:
        v = get(d)
        return v is not None and test(v)

    return check


def _dotted(d: Record, name: str) -> Any:
    """``user.name``: the key as written, else the path through nested objects (a record's
    fields beyond its contract keep their JSON shape)."""
    v = d.get(name)
    if v is not None:
        return v
    node: Any = d
    for part in name.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _value_test(leaf: Leaf) -> Callable[[Any], bool]:
    """A test of one present value."""
    op, want = leaf.op, leaf.value
    if op in ("eq", "ne"):
        want_bool = type(want) is bool

        def equal(v: Any) -> bool:
            # true is not 1 here, as in YAML and JSON
            return v == want and (type(v) is bool) is want_bool

        if op == "eq":
            return equal
        return lambda v: not equal(v)
    if op == "in":
        members = frozenset(want)

        def among(v: Any) -> bool:
            try:
                return v in members
            except TypeError:
                return False

        return among
    if op in _TEXT_OPS:
        needle = want if leaf.cased else want.lower()
        fold: Callable[[Any], str] = text if leaf.cased else (lambda v: text(v).lower())
        if op == "text_eq":
            return lambda v: fold(v) == needle
        if op == "contains":
            return lambda v: needle in fold(v)
        if op == "startswith":
            return lambda v: fold(v).startswith(needle)
        return lambda v: fold(v).endswith(needle)
    if op in ("gt", "gte", "lt", "lte"):
        limit = float(want)
        cmp = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]

        def compare(v: Any) -> bool:
            n = number(v)
            return n is not None and cmp(float(n), limit)

        return compare
    if op == "regex":
        search = want.search
        return lambda v: search(text(v)) is not None
    if op == "cidr":
        networks = tuple(want)
        return lambda v: _in_networks(v, networks)
    raise ValueError(f"unknown condition operator {op!r}")


_ADDRESSES: dict[str, Any] = {}


def _in_networks(value: Any, networks: Sequence[Any]) -> bool:
    if type(value) is not str:
        return False
    addr = _ADDRESSES.get(value)
    if addr is None:
        try:
            addr = ipaddress.ip_address(value.strip())
        except ValueError:
            addr = False
        if len(_ADDRESSES) > 65536:
            _ADDRESSES.clear()
        _ADDRESSES[value] = addr
    if addr is False:
        return False
    return any(
        addr.version == n.version and addr in n  # type: ignore[union-attr]
        for n in networks
    )


# -- triggers -------------------------------------------------------------------------------

# (field, mode, needle): mode "cased"/"folded" (case-folded) for a literal needle in the
# joined column, "re" for a regex searched in it (``needle`` is then the compiled pattern)
Trigger = tuple[str, str, Any]


def triggers(node: Node) -> list[Trigger] | None:
    """Literals one of which must occur for ``node`` to hold, or None when there are none."""
    if isinstance(node, Leaf):
        return _leaf_triggers(node)
    if isinstance(node, Not):
        return None
    if isinstance(node, Any_):
        out: list[Trigger] = []
        for item in node.items:
            found = triggers(item)
            if found is None:
                return None
            out.extend(found)
        return out or None
    best: list[Trigger] | None = None
    for item in node.items:
        found = triggers(item)
        if found is not None and (best is None or _score(found) > _score(best)):
            best = found
    return best


def _score(found: list[Trigger]) -> tuple[int, int]:
    # the fewer literals and the longer the shortest, the fewer events they let through; a
    # regex is searched last (the slowest to look for)
    # (a comparison counts as a 4-character literal: it is read column-wise, in C)
    return min(
        0 if m == "re" else 4 if m == "cmp" else len(n.strip(SEP)) for _, m, n in found
    ), -len(found)


def _leaf_triggers(leaf: Leaf) -> list[Trigger] | None:
    if leaf.field is None or "." in leaf.field:  # a keyword; a path into nested objects
        return None
    if leaf.op in _TEXT_OPS:
        needle = leaf.value if leaf.cased else leaf.value.lower()
        if not needle or SEP in needle:
            return None
        wrapped = {
            "text_eq": SEP + needle + SEP,
            "contains": needle,
            "startswith": SEP + needle,
            "endswith": needle + SEP,
        }[leaf.op]
        return [(leaf.field, "cased" if leaf.cased else "folded", wrapped)]
    if leaf.op == "eq" and type(leaf.value) is str and leaf.value and SEP not in leaf.value:
        return [(leaf.field, "cased", SEP + leaf.value + SEP)]
    if (
        leaf.op == "in"
        and leaf.value
        and all(type(v) is str and v and SEP not in v for v in leaf.value)
    ):
        return [(leaf.field, "cased", SEP + v + SEP) for v in leaf.value]
    if leaf.op in _CMP:
        return [(leaf.field, "cmp", (leaf.op, float(leaf.value)))]
    if leaf.op == "regex":
        # searched in the column joined by newlines, with ^ and $ at each value's ends
        # (MULTILINE); \A and \Z would mean the whole column, so such a regex has none
        pattern = leaf.value.pattern
        if any(anchor in pattern for anchor in ("\\A", "\\Z", "\\z")):
            return None
        return [(leaf.field, "re", re.compile(pattern, leaf.value.flags | re.MULTILINE))]
    return None


class _Joined:
    """One field of a batch: its distinct values joined into one string, where each value
    starts in it, and (on demand) which events hold which value. User agents, methods and
    statuses repeat: the search reads each distinct value once.

    For a regex the separator is a newline and values keep their case: ``^``/``$`` (with
    MULTILINE) then match at each value's ends as they would in the value alone. A match
    that runs from one value into the next makes its first value a candidate (the record
    predicate decides), and the search goes on from the next value, so none is missed. A
    batch with a newline inside a value gives every event to the predicate."""

    __slots__ = ("_chars", "all", "column", "starts", "text", "values")

    def __init__(self, column: list[Any], mode: str) -> None:
        self.column = column
        kinds = set(map(type, column))
        # distinct values, unless two kinds could be equal with different texts (1, 1.0, true)
        one_kind = kinds <= _SCALARS and len(kinds - {type(None)}) <= 1
        distinct = list(dict.fromkeys(column)) if one_kind else column
        values = distinct if kinds == {str} else ["" if v is None else text(v) for v in distinct]
        self.values = distinct
        sep = "\n" if mode == "re" else SEP
        joined = sep + sep.join(values) + sep
        # a value holding the separator could hide a regex match; literals are safe
        self.all = mode == "re" and joined.count(sep) != len(values) + 1
        if mode == "folded":
            lowered = joined.lower()
            if len(lowered) != len(joined):  # a character whose lower case is longer
                values = [v.lower() for v in values]
                lowered = SEP + SEP.join(values) + SEP
            joined = lowered
        # starts[i]: offset of the separator before value i; starts[n]: the final one
        self.starts = list(accumulate(map(_PLUS_ONE, map(len, values)), initial=0))
        self.text = joined
        self._chars: set[str] | None = None

    def may_hold(self, chars: frozenset[str]) -> bool:
        """False when a character of a needle occurs nowhere in the column: attack strings
        are full of characters (``(``, ``<``, ``$``, ``;``) most columns never hold, and one
        pass over the text saves a search per such needle."""
        if self._chars is None:
            self._chars = set(self.text)
        return chars <= self._chars

    def _events(self, hits: list[int]) -> list[int]:
        """The events holding the distinct values ``hits`` (indices into ``values``)."""
        if not hits:
            return []
        column = self.column
        if self.values is column:
            return hits
        if len(hits) == 1:
            return list(compress(range(len(column)), map(eq, column, repeat(self.values[hits[0]]))))
        wanted = {self.values[i] for i in hits}
        return list(compress(range(len(column)), map(wanted.__contains__, column)))

    def events_matching(self, pattern: re.Pattern[str]) -> list[int]:
        """Indices of the events where ``pattern`` may match (ascending)."""
        starts = self.starts
        last = len(starts) - 1
        if self.all:
            return list(range(len(self.column)))
        search = pattern.search
        text_ = self.text
        out: list[int] = []
        m = search(text_, 1)
        while m is not None:
            value = bisect_right(starts, m.start()) - 1
            if value >= last:
                break
            value = max(value, 0)
            out.append(value)
            m = search(text_, starts[value + 1] + 1)
        return self._events(out)

    def events_with(self, needle: str) -> list[int]:
        """Indices of the events whose text holds ``needle`` (ascending)."""
        find = self.text.find
        starts = self.starts
        out: list[int] = []
        i = find(needle)
        last = len(starts) - 1
        while i >= 0:
            value = bisect_right(starts, i) - 1
            if value >= last:  # the final separator itself
                break
            out.append(value)
            i = find(needle, starts[value + 1])
        return self._events(out)


_PLUS_ONE = (1).__add__
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CMP = {"gt": gt, "gte": ge, "lt": lt, "lte": le}


def _numbers_where(column: list[Any], op: str, limit: float) -> list[int] | None:
    """The events whose number in ``column`` passes ``op limit``, column-wise; None when the
    column holds anything but numbers (the record predicate decides then)."""
    kinds = set(map(type, column))
    if not kinds or not kinds <= {int, float}:
        return None
    return list(compress(range(len(column)), map(_CMP[op], column, repeat(limit))))


class BatchMatcher:
    """Which events of a batch each of many conditions holds for; see the module docstring.

    Shared by the detectors of one engine: ``matches(batch)`` computes every condition's
    events the first time a batch is asked for, and answers from that for the others."""

    def __init__(self, conditions: Sequence[Node]) -> None:
        self.conditions = list(conditions)
        self.predicates = [record_predicate(c) for c in self.conditions]
        self.triggers = [triggers(c) for c in self.conditions]
        self._batch: EventBatch | None = None
        self._result: list[list[int]] = []
        self._needle_chars: dict[str, frozenset[str]] = {}

    def _chars(self, needle: str) -> frozenset[str]:
        chars = self._needle_chars.get(needle)
        if chars is None:
            chars = self._needle_chars[needle] = frozenset(needle)
        return chars

    def add(self, condition: Node) -> int:
        """Add a condition; its slot in ``matches``."""
        self.conditions.append(condition)
        self.predicates.append(record_predicate(condition))
        self.triggers.append(triggers(condition))
        self._batch = None
        return len(self.conditions) - 1

    def matches(self, batch: EventBatch, keep: bool = True) -> list[list[int]]:
        """Each condition's events of ``batch``, as positions in it, in order; ``keep``:
        remembered for the next detector that asks of the same batch."""
        if batch is self._batch:
            return self._result
        n = len(batch)
        # the records a condition is tried on: a batch of Events has them all; one read into
        # columns (FrameBatch) makes an Event of each once, and of no other
        rows: list[dict[str, Any]] | None = batch.rows if type(batch) is EventBatch else None
        made: dict[int, dict[str, Any]] = {}
        joined: dict[tuple[str, str], _Joined] = {}
        found: dict[Trigger, list[int]] = {}
        every = range(n)
        result: list[list[int]] = []
        for pred, trig in zip(self.predicates, self.triggers, strict=True):
            if trig is None:
                candidates: Sequence[int] = every
            else:
                hits: set[int] = set()
                for t in trig:
                    got = found.get(t)
                    if got is None:
                        if t[1] == "cmp":
                            got = _numbers_where(batch.column(t[0]), *t[2])
                            if got is None:
                                got = list(every)
                        else:
                            column = joined.get(t[:2])
                            if column is None:
                                column = joined[t[:2]] = _Joined(batch.column(t[0]), t[1])
                            if t[1] == "re":
                                got = column.events_matching(t[2])
                            elif column.may_hold(self._chars(t[2])):
                                got = column.events_with(t[2])
                            else:
                                got = []
                        found[t] = got
                    hits.update(got)
                if not hits:
                    result.append([])
                    continue
                candidates = sorted(hits)
            if rows is not None:
                result.append([i for i in candidates if pred(rows[i])])
                continue
            missing = [i for i in candidates if i not in made]
            if missing:
                made.update(zip(missing, map(_DATA, batch.events_at(missing)), strict=True))
            result.append([i for i in candidates if pred(made[i])])
        if keep:
            self._batch = batch
            self._result = result
        return result


def frame_select(condition: Node) -> Callable[[Any], list[bool]]:
    """``condition`` as a column expression over a RecordFrame (``Detector.column_prefilter``'s
    form): a truth value a record, True exactly where ``record_predicate(condition)`` holds for
    the record's fields, found as ``BatchMatcher`` finds them (triggers searched in the
    columns, the predicate given the candidates alone)."""
    matcher = BatchMatcher([condition])

    def select(frame: Any) -> list[bool]:
        n = len(frame)
        row = frame.row  # (the matcher reads a candidate's ``data`` alone)
        batch = FrameBatch(
            frame,
            list(range(n)),
            lambda rows: [Event("", 0.0, row(i)) for i in rows],
            "",
            0,
            list,
        )
        picked = [False] * n
        for i in matcher.matches(batch, keep=False)[0]:
            picked[i] = True
        return picked

    return select


__all__ = [
    "OPS",
    "TRUE",
    "All",
    "Any_",
    "BatchMatcher",
    "Leaf",
    "Node",
    "Not",
    "fields_of",
    "frame_select",
    "record_predicate",
    "text",
    "triggers",
]
