"""Sigma rules: parsed by pySigma, mapped onto families and contract fields, compiled once.

    sigma: [sigma/]                 # files or folders of Sigma rules (*.yml, *.yaml)
    sigma:                          # or, to map logsources of your own:
      rules: [sigma/]
      logsources:                   # tried before the shipped ones; the first that matches
        - {category: proxy, family: api-access-logs, fields: {c-uri: endpoint}}

    Sigma file --pySigma--> SigmaRule / SigmaCorrelationRule (modifiers applied, condition
        |                   parsed: and/or/not, 1 of sel*, all of them)
        |-- logsource -> a family and a field map (LOGSOURCES, or the config's first)
        |-- pySigma ProcessingPipeline (FieldMappingTransformation): Sigma field names ->
        |   contract fields
        v
    condition tree -> predicates.Node, once (to_node); a rule that uses what we do not run
    (a field reference, a placeholder, nested correlations, ...) is skipped and reported
    with its file, id and what, never a crash

A detection rule is a rule of type ``any`` (kind ``sigma:<name or id>``): every matching
event fires. A rule that only a correlation reads (``generate: false``, the default of the
spec) raises nothing itself. A correlation rule (event_count, value_count, temporal,
temporal_ordered) is a ``CorrelationRule``: per group-by key, in event time, over its
timespan.

String matching is case-insensitive unless ``|cased``; a keyword (a value without a field)
matches when any string field of the record contains it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..alerts import Alert
from ..detectors._windows import KeyedState, window_add
from ..detectors.columns import EventBatch
from ..errors import ConfigError
from ..events import Event
from .predicates import All, Any_, BatchMatcher, Leaf, Node, Not, fields_of, record_predicate, text
from .types import RULE_TYPES, RuleDetector, RuleSpec

# -- logsources -----------------------------------------------------------------------------

_WEB_FIELDS = {
    "cs-uri-query": "endpoint",
    "cs-uri-stem": "endpoint",
    "cs-uri": "endpoint",
    "c-uri": "endpoint",
    "c-uri-query": "endpoint",
    "c-uri-stem": "endpoint",
    "c-ip": "ip_address",
    "cs-method": "method",
    "sc-status": "status_code",
    "cs-user-agent": "user_agent",
    "c-useragent": "user_agent",
}
_AUTH_FIELDS = {
    "User": "username",
    "user": "username",
    "TargetUserName": "username",
    "user.name": "username",
    "IpAddress": "ip_address",
    "SourceIp": "ip_address",
    "src_ip": "ip_address",
    "source.ip": "ip_address",
    "c-ip": "ip_address",
    "UserAgent": "user_agent",
    "user_agent.original": "user_agent",
}


@dataclass(slots=True)
class Logsource:
    """Which Sigma logsource a family answers for, and how Sigma fields map onto its."""

    family: str
    category: str | None = None
    product: str | None = None
    service: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    _pipeline: Any = None

    def matches(self, ls: Any) -> bool:
        named = [
            (self.category, ls.category),
            (self.product, ls.product),
            (self.service, ls.service),
        ]
        return any(want for want, _ in named) and all(
            want is None or want == got for want, got in named
        )

    def pipeline(self) -> Any:
        if self._pipeline is None:
            from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
            from sigma.processing.transformations import FieldMappingTransformation

            self._pipeline = ProcessingPipeline(
                name=f"streamproc {self.family}",
                items=[
                    ProcessingItem(
                        transformation=FieldMappingTransformation(
                            dict(self.fields)  # type: ignore[arg-type]
                        )
                    )
                ]
                if self.fields
                else [],
            )
        return self._pipeline

    def describe(self) -> str:
        return "/".join(
            f"{k}={v}"
            for k, v in (
                ("category", self.category),
                ("product", self.product),
                ("service", self.service),
            )
            if v
        )


LOGSOURCES = (
    Logsource("api-access-logs", category="webserver", fields=_WEB_FIELDS),
    Logsource("auth-logs", product="linux", service="sshd", fields=_AUTH_FIELDS),
    Logsource("auth-logs", category="authentication", fields=_AUTH_FIELDS),
)

_LEVELS = {
    "informational": "info",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}


# -- the config section ---------------------------------------------------------------------


def load_sigma(node: Any, file: str | None, families: set[str], out: Any) -> None:
    """Read ``sigma:`` into ``out`` (a RuleSet): specs for the rules that load, ``skipped``
    for those that do not. Raises ConfigError for a malformed section."""
    from . import Skipped

    paths, logsources = _section(node, file, families)
    from .files import rule_files

    rules: list[tuple[str, Any]] = []  # (file, rule)
    for path in rule_files(paths, file):
        rules.extend(_parse_file(path, out))
    if not rules:
        return
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule

    collection = SigmaCollection([r for _, r in rules], resolve_references=False)
    detections: dict[int, RuleSpec] = {}
    for path_, rule in rules:
        if isinstance(rule, SigmaCorrelationRule):
            continue
        try:
            spec = detection_spec(rule, path_, logsources, families)
        except Unsupported as exc:
            out.skipped.append(Skipped(path_, rule_label(rule), str(exc)))
            continue
        detections[id(rule)] = spec
        out.notes.extend(f"{path_}: {rule_label(rule)}: {n}" for n in _field_notes(spec))
    correlations: list[RuleSpec] = []
    for path_, rule in rules:
        if not isinstance(rule, SigmaCorrelationRule):
            continue
        try:
            rule.resolve_rule_references(collection)
            correlations.append(correlation_spec(rule, path_, detections))
        except Unsupported as exc:
            out.skipped.append(Skipped(path_, rule_label(rule), str(exc)))
        except Exception as exc:  # noqa: BLE001 (pySigma's own errors: a missing reference)
            out.skipped.append(Skipped(path_, rule_label(rule), _sigma_error(exc)))
    # a rule that a correlation reads without ``generate: true`` raises nothing itself
    # (pySigma marks it when the reference is resolved)
    taken = {s.kind: s.origin for s in out.specs}
    ordered: list[tuple[RuleSpec | None, Any]] = [(detections.get(id(r)), r) for _, r in rules]
    ordered += [(c, None) for c in correlations]
    for maybe, rule in ordered:
        if maybe is None:
            continue
        one = maybe
        if rule is not None:
            one.generate = bool(rule._output)
        if one.kind in taken:
            out.skipped.append(
                Skipped(
                    one.origin,
                    one.rule_id,
                    f"{one.kind} is also the kind of a rule in "
                    f"{taken[one.kind]} (give each rule its own name)",
                )
            )
            continue
        taken[one.kind] = one.origin
        out.specs.append(one)


def _section(node: Any, file: str | None, families: set[str]) -> tuple[list[str], list[Logsource]]:
    if isinstance(node, str):
        node = [node]
    if isinstance(node, list):
        return [str(p) for p in node], list(LOGSOURCES)
    if not isinstance(node, dict):
        raise ConfigError(
            "'sigma' must list Sigma rule files or folders, or be a mapping with "
            "rules: and logsources:",
            file=file,
            line=getattr(node, "line", None),
        )
    unknown = set(map(str, node)) - {"rules", "logsources"}
    if unknown:
        raise ConfigError(
            f"sigma: unknown key {', '.join(sorted(unknown))}",
            file=file,
            line=getattr(node, "line", None),
            hint="known keys: rules, logsources",
        )
    paths = node.get("rules") or []
    if isinstance(paths, str):
        paths = [paths]
    own: list[Logsource] = []
    for i, entry in enumerate(node.get("logsources") or []):
        where = f"sigma.logsources[{i}]"
        line = getattr(entry, "line", None)
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping", file=file, line=line)
        bad = set(map(str, entry)) - {"category", "product", "service", "family", "fields"}
        if bad:
            raise ConfigError(
                f"{where}: unknown key {', '.join(sorted(bad))}",
                file=file,
                line=line,
                hint="known: category, product, service, family, fields",
            )
        if entry.get("family") not in families:
            raise ConfigError(
                f"{where}: unknown family {entry.get('family')!r}",
                file=file,
                line=line,
                hint=f"known: {', '.join(sorted(families))}",
            )
        if not any(entry.get(k) for k in ("category", "product", "service")):
            raise ConfigError(
                f"{where} names no category, product or service", file=file, line=line
            )
        fields = entry.get("fields") or {}
        if not isinstance(fields, dict):
            raise ConfigError(
                f"{where}.fields must map Sigma fields to record fields", file=file, line=line
            )
        shipped = next((ls.fields for ls in LOGSOURCES if ls.family == entry["family"]), {})
        own.append(
            Logsource(
                entry["family"],
                entry.get("category"),
                entry.get("product"),
                entry.get("service"),
                {**shipped, **{str(k): str(v) for k, v in fields.items()}},
            )
        )
    return [str(p) for p in paths], own + list(LOGSOURCES)


def _parse_file(path: Path, out: Any) -> list[tuple[str, Any]]:
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaRuleLocation

    from . import Skipped

    try:
        collection = SigmaCollection.from_yaml(
            path.read_text(),
            collect_errors=True,
            source=SigmaRuleLocation(path),
            resolve_references=False,
        )
    except Exception as exc:  # noqa: BLE001 (not YAML, not Sigma: reported, never fatal)
        out.skipped.append(Skipped(str(path), "(file)", _sigma_error(exc)))
        return []
    of_rules = {id(e) for rule in collection.rules for e in rule.errors}
    for error in collection.errors:
        if id(error) not in of_rules:
            out.skipped.append(Skipped(str(path), "(file)", _sigma_error(error)))
    kept = []
    for rule in collection.rules:
        if rule.errors:
            out.skipped.append(
                Skipped(
                    str(path), rule_label(rule), "; ".join(_sigma_error(e) for e in rule.errors)
                )
            )
        else:
            kept.append((str(path), rule))
    return kept


def _sigma_error(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__


def rule_label(rule: Any) -> str:
    return str(rule.id or rule.name or rule.title or "(untitled)")


class Unsupported(Exception):
    """A construct this engine does not run (the rule is skipped and reported)."""


# -- detection rules ------------------------------------------------------------------------


def detection_spec(
    rule: Any, path: str, logsources: list[Logsource], families: set[str]
) -> RuleSpec:
    ls = next((s for s in logsources if s.matches(rule.logsource)), None)
    if ls is None:
        raise Unsupported(
            f"no family for logsource {_logsource_text(rule.logsource)} "
            f"(map it under sigma.logsources)"
        )
    if ls.family not in families:
        raise Unsupported(f"family {ls.family!r} is not configured")
    mapped = ls.pipeline().apply(rule) if ls.fields else rule
    conditions = [to_node(c.parsed) for c in mapped.detection.parsed_condition]
    condition = conditions[0] if len(conditions) == 1 else Any_(tuple(conditions))
    name = str(rule.name or rule.id or _slug(rule.title))
    level = _LEVELS.get(str(rule.level).lower(), "medium") if rule.level else "medium"
    return RuleSpec(
        rule_id=str(rule.id or rule.name or _slug(rule.title)),
        kind=f"sigma:{name}",
        family=ls.family,
        type="any",
        condition=condition,
        key=(),
        params={},
        severity=level,
        labels={},
        origin=path,
        source="sigma",
        display=str(rule.title or name),
        annotations={"description": str(rule.description)} if rule.description else {},
        sigma_fields=dict(ls.fields),
    )


def _logsource_text(ls: Any) -> str:
    parts = [f"{k}={getattr(ls, k)}" for k in ("category", "product", "service") if getattr(ls, k)]
    return "/".join(parts) or "(none)"


def _slug(title: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(title or "rule")).strip("-").lower()[:96]


def _field_notes(spec: RuleSpec) -> list[str]:
    from ..contracts import builtin_contracts

    contract = builtin_contracts().get(spec.family)
    if contract is None:
        return []
    extra = sorted(fields_of(spec.condition) - set(contract.fields))
    return [
        f"field {f!r} is not in the {spec.family} contract (records must carry it)" for f in extra
    ]


def to_node(item: Any) -> Node:
    """A pySigma condition tree (modifiers applied, fields mapped) -> predicates.Node."""
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if isinstance(item, ConditionAND):
        return All(tuple(to_node(a) for a in item.args))
    if isinstance(item, ConditionOR):
        return Any_(tuple(to_node(a) for a in item.args))
    if isinstance(item, ConditionNOT):
        return Not(to_node(item.args[0]))
    if isinstance(item, ConditionFieldEqualsValueExpression):
        return value_node(item.field, item.value)
    if isinstance(item, ConditionValueExpression):
        return value_node(None, item.value)
    raise Unsupported(f"condition item {type(item).__name__}")


def value_node(name: str | None, value: Any) -> Node:
    """One Sigma value (after its modifiers) tested against field ``name`` (None: keyword)."""
    from sigma import types as st

    if isinstance(value, st.SigmaExpansion):
        return Any_(tuple(value_node(name, v) for v in value.values))
    if isinstance(value, st.SigmaString):
        return _string_node(name, value)
    if name is None:
        raise Unsupported(f"a keyword must be a string, not {type(value).__name__}")
    if isinstance(value, st.SigmaBool):
        return Leaf(name, "eq", bool(value.boolean))
    if isinstance(value, st.SigmaNumber):
        return _number_eq(name, value.number)
    if isinstance(value, st.SigmaNull):
        return Leaf(name, "null")
    if isinstance(value, st.SigmaExists):
        return Leaf(name, "exists", bool(value.exists))
    if isinstance(value, st.SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= value.sigma_to_python_flags[flag]
        try:
            return Leaf(name, "regex", re.compile(str(value.regexp), flags))
        except re.error as exc:
            raise Unsupported(f"regular expression {str(value.regexp)!r}: {exc}") from None
    if isinstance(value, st.SigmaCIDRExpression):
        return Leaf(name, "cidr", (value.network,))
    if isinstance(value, st.SigmaCompareExpression):
        op = value.op.name.lower()
        n = value.number.number
        if op == "neq":
            return Not(_number_eq(name, n))
        return Leaf(name, op, n)
    what = _MODIFIERS.get(type(value).__name__, type(value).__name__ + " values")
    raise Unsupported(f"field {name!r}: {what} is not supported")


_MODIFIERS = {
    "SigmaFieldReference": "the fieldref modifier (a comparison between fields)",
    "SigmaQueryExpression": "a query expression (expand, placeholders)",
}


def _number_eq(name: str, n: int | float) -> Node:
    # a number equals a number, or a record's string of it ("404")
    return Any_((Leaf(name, "eq", n), Leaf(name, "text_eq", str(n), cased=True)))


def _string_node(name: str | None, value: Any) -> Node:
    from sigma import types as st

    if value.contains_placeholder():
        raise Unsupported(f"field {name!r}: placeholders (%name%) are not supported")
    cased = isinstance(value, st.SigmaCasedString)
    parts = value.s
    multi, single = st.SpecialChars.WILDCARD_MULTI, st.SpecialChars.WILDCARD_SINGLE
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    if name is None and not specials:  # a keyword: full text, contained in a string field
        return Leaf(None, "contains", "".join(plain), cased)
    if not specials:
        return Leaf(name, "text_eq", "".join(plain), cased)
    if all(p is multi for p in specials) and len(plain) == 1:
        s = plain[0]
        if len(parts) == 3 and parts[0] is multi and parts[2] is multi:
            return Leaf(name, "contains", s, cased)
        if len(parts) == 2 and parts[1] is multi:
            return Leaf(name, "startswith", s, cased)
        if len(parts) == 2 and parts[0] is multi:
            return Leaf(name, "endswith", s, cased)
    if len(parts) == 1 and parts[0] is multi:
        return (
            Leaf(name, "exists", True) if name is not None else Leaf(None, "regex", re.compile(""))
        )
    pattern = "".join(
        re.escape(p) if isinstance(p, str) else ".*" if p is multi else "." if p is single else ""
        for p in parts
    )
    if name is None:  # keyword with wildcards: somewhere in a field
        return Leaf(None, "regex", re.compile(pattern, 0 if cased else re.IGNORECASE | re.S))
    leaf = Leaf(
        name,
        "regex",
        re.compile(r"\A(?:" + pattern + r")\Z", (0 if cased else re.IGNORECASE) | re.S),
    )
    # the pattern's longest literal must be in the value: a needle to look for first
    longest = max(plain, key=len, default="")
    if len(longest) < 2:
        return leaf
    return All((Leaf(name, "contains", longest, cased), leaf))


# -- correlation rules ----------------------------------------------------------------------

_SUPPORTED = {"event_count", "value_count", "temporal", "temporal_ordered"}


def correlation_spec(rule: Any, path: str, detections: dict[int, RuleSpec]) -> RuleSpec:
    from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule

    ctype = str(rule.type.name).lower()
    if ctype not in _SUPPORTED:
        raise Unsupported(f"correlation type {ctype} (supported: {', '.join(sorted(_SUPPORTED))})")
    refs: list[RuleSpec] = []
    for ref in rule.referenced_rules:
        target = ref.rule
        if isinstance(target, SigmaCorrelationRule):
            raise Unsupported("a correlation of correlations")
        spec = detections.get(id(target))
        if spec is None:
            raise Unsupported(f"referenced rule {ref.reference!r} did not load")
        refs.append(spec)
    families = {s.family for s in refs}
    if len(families) != 1:
        raise Unsupported(f"referenced rules read several families ({', '.join(sorted(families))})")
    family = families.pop()
    fields = refs[0].sigma_fields
    if len(rule.aliases):
        raise Unsupported("field aliases")
    group_by = tuple(fields.get(f, f) for f in (rule.group_by or []))
    cond = rule.condition
    op, count, value_field = "gte", float(len(refs)), None
    if isinstance(cond, SigmaCorrelationCondition):
        op, count = cond.op.name.lower(), cond.count
        if cond.fieldref is not None:
            if not isinstance(cond.fieldref, str):
                raise Unsupported("a condition over several fields")
            value_field = fields.get(cond.fieldref, cond.fieldref)
    elif cond is not None:
        raise Unsupported("extended (boolean) correlation conditions")
    if ctype in ("event_count", "value_count") and op not in ("gte", "gt"):
        raise Unsupported(f"condition {op} (supported: gte, gt)")
    # temporal types: every referenced rule, whatever the condition counts
    threshold = len(refs) if ctype.startswith("temporal") else int(count) + (1 if op == "gt" else 0)
    name = str(rule.name or rule.id or _slug(rule.title))
    level = _LEVELS.get(str(rule.level).lower(), "medium") if rule.level else "medium"
    return RuleSpec(
        rule_id=str(rule.id or rule.name or _slug(rule.title)),
        kind=f"sigma:{name}",
        family=family,
        type="correlation",
        condition=Any_(tuple(s.condition for s in refs)),
        key=group_by,
        params={
            "ctype": ctype,
            "window": float(rule.timespan.seconds),
            "threshold": threshold,
            "field": value_field,
            "refs": refs,
            "realert": float(rule.timespan.seconds),
        },
        severity=level,
        origin=path,
        source="sigma",
        display=str(rule.title or name),
        sigma_fields=fields,
    )


class CorrelationRule(RuleDetector):
    """A Sigma correlation per group-by key, in event time, within its timespan::

        event_count       >= N events of the referenced rules          --x-x--x-x-> FIRE at N
        value_count       >= N distinct values of a field among them
        temporal          every referenced rule matched within the timespan (any order)
        temporal_ordered  ... in the order the rules are listed: A then B then C

    Each referenced rule's matches keep their newest times per key (a bounded list); a late
    match is inserted in time order and the window ending at the newest match is judged
    too, as frequency does. After a fire a key is quiet for the timespan."""

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        p = self.spec.params
        self.ctype: str = p["ctype"]
        self.refs: list[RuleSpec] = p["refs"]
        self.ref_preds = [record_predicate(r.condition) for r in self.refs]
        self.threshold = int(p["threshold"])
        self.cap = max(2 * self.threshold, 8)
        # key -> per referenced rule: sorted times (value_count: value -> latest time)
        self.state: KeyedState[str, Any] = KeyedState(self.ctx.key_cap)
        self.ref_slots: list[int] = []

    @classmethod
    def colocation(cls, spec: RuleSpec) -> tuple[str, ...] | None:
        return spec.key or None

    def share(self, matcher: BatchMatcher) -> None:
        super().share(matcher)
        self.ref_slots = [matcher.add(r.condition) for r in self.refs]

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        if self.matcher is None:
            return self.process(batch.events)
        result = self.matcher.matches(batch)
        hits: dict[int, list[int]] = {}
        for r, slot in enumerate(self.ref_slots):
            for i in result[slot]:
                hits.setdefault(i, []).append(r)
        if not hits:
            return []
        order = sorted(hits)
        self.evaluations += len(order)
        return self.correlate(
            [(ev, hits[i]) for i, ev in zip(order, batch.events_at(order), strict=True)]
        )

    def process(self, events: list[Event]) -> list[Alert]:
        picked = []
        for ev in events:
            which = [r for r, pred in enumerate(self.ref_preds) if pred(ev.data)]
            if which:
                picked.append((ev, which))
        self.evaluations += len(picked)
        return self.correlate(picked)

    def correlate(self, picked: list[tuple[Event, list[int]]]) -> list[Alert]:
        out = []
        window = self.window
        for ev, which in picked:
            key = self.key_of(ev.data)
            ts = ev.ts
            st = self.state.get(key)
            if self.ctype == "value_count":
                value = ev.data.get(self.field_name)  # type: ignore[arg-type]
                if value is None:
                    continue
                if st is None:
                    st = {}
                self.state.touch(key, st)
                value = text(value)
                if st.get(value, float("-inf")) < ts:
                    st[value] = ts
                newest = max(st.values())
                for v in [v for v, t in st.items() if t < newest - window]:
                    del st[v]
                if len(st) > self.cap:
                    for v, _ in sorted(st.items(), key=lambda i: i[1])[: len(st) - self.cap]:
                        del st[v]
                fire = self._distinct(st, ts) or self._distinct(st, newest)
            else:
                if st is None:
                    st = [[] for _ in self.refs]
                self.state.touch(key, st)
                if self.ctype == "event_count":
                    which = which[:1]  # one event counts once, whichever rules it matched
                for r in which:
                    times = st[r]
                    window_add(times, ts)
                    if len(times) > self.cap:
                        del times[: len(times) - self.cap]
                newest = max((t[-1] for t in st if t), default=ts)
                for times in st:
                    if times and times[0] < newest - window:
                        del times[: bisect_left(times, newest - window)]
                fire = self._judge_at(st, ts) or self._judge_at(st, newest)
            if fire is None:
                continue
            first, at, count = fire
            if self.quieted(key, at):
                continue
            out.append(
                self.alert(
                    key=key,
                    incident=first,
                    event_time=at,
                    default_title=self.spec.display,
                    values={"count": count},
                    evidence={
                        "correlation": self.ctype,
                        "count": count,
                        "first_seen": first,
                        "timespan_seconds": window,
                        "rules": [r.rule_id for r in self.refs],
                    },
                    ev=ev,
                )
            )
        return out

    def _distinct(self, seen: dict[str, float], end: float) -> tuple[float, float, int] | None:
        within = [t for t in seen.values() if end - self.window <= t <= end]
        if len(within) >= self.threshold:
            return min(within), end, len(within)
        return None

    def _judge_at(self, st: list[list[float]], end: float) -> tuple[float, float, int] | None:
        start = end - self.window
        if self.ctype == "event_count":
            merged = sorted(
                t
                for times in st
                for t in times[bisect_left(times, start) : bisect_right(times, end)]
            )
            if len(merged) >= self.threshold:
                return merged[0], end, len(merged)
            return None
        if self.ctype == "temporal":
            firsts = []
            for times in st:
                lo = bisect_left(times, start)
                if lo >= len(times) or times[lo] > end:
                    return None
                firsts.append(times[lo])
            return min(firsts), end, len(st)
        # temporal_ordered: the latest chain A <= B <= ... ending at or before ``end``
        bound = end
        chain = []
        for times in reversed(st):
            i = bisect_right(times, bound) - 1
            if i < 0:
                return None
            bound = times[i]
            chain.append(bound)
        if chain[-1] < start:
            return None
        return chain[-1], chain[0], len(st)

    def on_watermark(self, watermark: float) -> list[Alert]:
        horizon = watermark - self.window
        for key, st in self.state.items():
            newest = (
                max(st.values(), default=float("-inf"))
                if isinstance(st, dict)
                else max((t[-1] for t in st if t), default=float("-inf"))
            )
            if newest < horizon:
                self.state.pop(key)
        self.drop_quiet(watermark)
        return []

    def state_snapshot(self) -> Any:
        return {
            **self.base_snapshot(),
            "keys": [
                [k, st if isinstance(st, list) else [[v, t] for v, t in st.items()]]
                for k, st in self.state.items()
            ],
        }

    def state_restore(self, state: Any) -> None:
        self.base_restore(state)
        for key, st in state.get("keys", []):
            if self.ctype == "value_count":
                self.state.touch(key, {v: float(t) for v, t in st})
            else:
                self.state.touch(key, [[float(t) for t in times] for times in st])


RULE_TYPES["correlation"] = CorrelationRule
