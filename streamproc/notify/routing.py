"""Routing: ordered rules turn an alert into Apprise tags, and tags into channels.

Rules are tried top to bottom; the first match wins unless it says ``continue: true``, in
which case later rules may add more tags (Alertmanager's semantics). A rule matches when all
of its conditions hold:

    routes:
      - match:
          kind: [brute_force, password_spray]   # one value, or a list of alternatives
          category: security                    # security infrastructure delivery support business
          min_severity: high                    # info < low < medium < high < critical
          status: firing                        # firing | resolved
          labels: {environment: "~prod.*"}      # "~REGEX" is a full-match regex
          topic: "~auth-.*"                     # the source topic of the alert
        tags: [oncall]                          # Apprise tags; "*" = every channel
        continue: false

Channels: an alert reaches every channel carrying one of its tags, plus every catch-all
channel (an inline URL or config entry without tags). Resolved alerts are not routed here:
they go where the firing one went (see Notifier).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..alerts import SEVERITIES, SEVERITY_RANK, Alert
from ..errors import ConfigError
from .channels import Channel
from .stage import Batch, Routed

if TYPE_CHECKING:
    from .dedup import Dedup
    from .group import Grouper
    from .settings import NotifySettings

ALL = "*"

DEFAULT_ROUTES: list[dict[str, Any]] = [
    {"name": "customer notices", "match": {"audience": "customer"}, "tags": ["customer"]},
    {
        "name": "security",
        "match": {"category": "security"},
        "tags": ["security-team"],
        "continue": True,
    },
    {
        "name": "security >= medium",
        "match": {"category": "security", "min_severity": "medium"},
        "tags": ["devops-team"],
        "continue": True,
    },
    {
        "name": "security >= high",
        "match": {"category": "security", "min_severity": "high"},
        "tags": ["management"],
        "continue": True,
    },
    {
        "name": "security critical",
        "match": {"category": "security", "min_severity": "critical"},
        "tags": ["sms", "phone"],
    },
    {
        "name": "host metrics critical",
        "match": {"family": "host-metrics", "min_severity": "critical"},
        "tags": ["infra", "critical"],
    },
    {"name": "host metrics", "match": {"family": "host-metrics"}, "tags": ["infra", "warning"]},
    {"name": "pipeline failed", "match": {"kind": "pipeline_failed"}, "tags": ["dev", "urgent"]},
    {
        "name": "production deployment",
        "match": {"category": "delivery", "labels": {"environment": "~(?i)prod(uction)?"}},
        "tags": [ALL],
    },
    {"name": "other delivery", "match": {"category": "delivery"}, "tags": ["dev"]},
    {
        "name": "support critical",
        "match": {"category": "support", "min_severity": "critical"},
        "tags": ["support", "management"],
    },
    {"name": "support", "match": {"category": "support"}, "tags": ["support"]},
    {
        "name": "business >= high",
        "match": {"category": "business", "min_severity": "high"},
        "tags": ["business-metrics", "exec"],
    },
    {"name": "business", "match": {"category": "business"}, "tags": ["business-metrics"]},
]

_MATCH_KEYS = {
    "kind",
    "category",
    "family",
    "audience",
    "status",
    "severity",
    "min_severity",
    "max_severity",
    "labels",
    "topic",
}


class Matcher:
    """A value test: exact string, ``~regex`` (full match), or a list of alternatives."""

    __slots__ = ("_exact", "_regexes", "text")

    def __init__(self, spec: Any, where: str) -> None:
        values = spec if isinstance(spec, list | tuple | set) else [spec]
        self._exact: set[str] = set()
        self._regexes: list[re.Pattern[str]] = []
        for v in values:
            s = str(v)
            if s.startswith("~"):
                try:
                    self._regexes.append(re.compile(s[1:]))
                except re.error as exc:
                    raise ConfigError(f"{where}: bad regex {s[1:]!r}: {exc}") from None
            else:
                self._exact.add(s)
        self.text = "|".join(str(v) for v in values)

    def __call__(self, value: Any) -> bool:
        if value is None:
            return False
        s = str(value)
        return s in self._exact or any(r.fullmatch(s) for r in self._regexes)


@dataclass(slots=True)
class Route:
    name: str
    tags: tuple[str, ...]
    cont: bool
    fields: dict[str, Matcher]
    labels: dict[str, Matcher]
    min_rank: int
    max_rank: int

    def matches(self, alert: Alert) -> bool:
        rank = SEVERITY_RANK.get(alert.severity, 0)
        if rank < self.min_rank or rank > self.max_rank:
            return False
        for key, m in self.fields.items():
            if key == "topic":
                value = (alert.source or {}).get("topic")
            else:
                value = getattr(alert, key, None)
            if not m(value):
                return False
        return all(m(alert.labels.get(k)) for k, m in self.labels.items())

    def describe(self) -> str:
        parts = [f"{k}={m.text}" for k, m in self.fields.items()]
        if self.min_rank > 0:
            parts.append(f"severity>={SEVERITIES[self.min_rank]}")
        if self.max_rank < len(SEVERITIES) - 1:
            parts.append(f"severity<={SEVERITIES[self.max_rank]}")
        parts += [f"labels.{k}={m.text}" for k, m in self.labels.items()]
        return " ".join(parts) or "any alert"


def _rank(value: Any, where: str) -> int:
    if value not in SEVERITY_RANK:
        raise ConfigError(
            f"{where}: unknown severity {value!r}", hint="one of " + ", ".join(SEVERITIES)
        )
    return SEVERITY_RANK[value]


def parse_route(rule: dict[str, Any], where: str) -> Route:
    if not isinstance(rule, dict):
        raise ConfigError(f"{where}: expected a mapping with match and tags")
    match = dict(rule.get("match") or {})
    for k in list(rule):
        if k in _MATCH_KEYS:  # match keys may also sit on the rule itself
            match[k] = rule[k]
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise ConfigError(
            f"{where}.match: unknown condition {sorted(unknown)[0]!r}",
            hint="known: " + ", ".join(sorted(_MATCH_KEYS)),
        )
    tags = rule.get("tags", rule.get("tag", []))
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    elif not isinstance(tags, list | tuple):
        raise ConfigError(
            f"{where}.tags: expected a tag or a list of tags, got {tags!r}",
            hint="tags: [oncall, security-team]",
        )
    min_rank, max_rank = 0, len(SEVERITIES) - 1
    if "min_severity" in match:
        min_rank = _rank(match.pop("min_severity"), f"{where}.match.min_severity")
    if "max_severity" in match:
        max_rank = _rank(match.pop("max_severity"), f"{where}.match.max_severity")
    labels_spec = match.pop("labels", None) or {}
    if not isinstance(labels_spec, dict):
        raise ConfigError(f"{where}.match.labels: expected {{label: value}}")
    return Route(
        name=str(rule.get("name") or where),
        tags=tuple(str(t) for t in tags),
        cont=bool(rule.get("continue", False)),
        fields={k: Matcher(v, f"{where}.match.{k}") for k, v in match.items()},
        labels={str(k): Matcher(v, f"{where}.match.labels.{k}") for k, v in labels_spec.items()},
        min_rank=min_rank,
        max_rank=max_rank,
    )


def build_routes(routes: list[dict[str, Any]] | None, *, defaults: bool = True) -> list[Route]:
    out = [parse_route(r, f"notify.routes[{i}]") for i, r in enumerate(routes or [])]
    if routes is None or defaults:
        out += [parse_route(r, f"default route {r['name']!r}") for r in DEFAULT_ROUTES]
    return out


class Router:
    """Stage: alert -> the channels it goes to."""

    def __init__(self, routes: Sequence[Route], channels: Iterable[Channel]) -> None:
        self.routes = list(routes)
        self.channels = [c for c in channels if not c.internal]
        self._catch_all = [c for c in self.channels if c.catch_all or not c.tags]
        self._by_tag: dict[str, list[Channel]] = {}
        for c in self.channels:
            for t in c.tags:
                self._by_tag.setdefault(t, []).append(c)

    def tags_for(self, alert: Alert) -> list[str]:
        tags: list[str] = []
        for route in self.routes:
            if route.matches(alert):
                tags.extend(t for t in route.tags if t not in tags)
                if not route.cont:
                    break
        return tags

    def channels_for_tags(self, tags: Iterable[str]) -> list[Channel]:
        picked: dict[str, Channel] = {c.id: c for c in self._catch_all}
        for t in tags:
            for c in self.channels if t == ALL else self._by_tag.get(t, []):
                picked.setdefault(c.id, c)
        return list(picked.values())

    def route(self, alert: Alert) -> list[Channel]:
        return self.channels_for_tags(self.tags_for(alert))

    @classmethod
    def from_settings(cls, settings: NotifySettings, channels: Iterable[Channel]) -> Router:
        return cls(build_routes(settings.routes, defaults=settings.default_routes), channels)


class RouteStage:
    """``route``: each alert to the channels its routes name (one item per channel).

    A resolved alert follows its firing one, wherever that went (the notification log, a
    group still waiting, or a firing earlier in this batch); only when it went nowhere is it
    routed like a firing alert. Alerts no channel takes go to ``batch.unrouted``.
    """

    name = "route"

    def __init__(
        self, router: Router, channels: dict[str, Channel], *, dedup: Dedup, grouper: Grouper
    ) -> None:
        self.router = router
        self.channels = channels
        self.dedup = dedup
        self.grouper = grouper

    async def run(self, batch: Batch[Alert]) -> Batch[Routed]:
        routed: list[Routed] = []
        firing_to: dict[str, set[str]] = {}  # a resolve follows its firing in this batch
        for a in batch.items:
            channels = self.channels_for(a, firing_to, batch.now)
            if not channels:
                batch.unrouted.append(a)
                continue
            for ch in channels:
                routed.append(Routed(a, ch.id))
                if a.status == "firing":
                    firing_to.setdefault(a.fingerprint, set()).add(ch.id)
        return batch.next(routed)

    def channels_for(
        self, alert: Alert, firing_to: dict[str, set[str]] | None = None, now: float = 0.0
    ) -> list[Channel]:
        """``firing_to``: channels the firing alerts earlier in this batch are headed for
        (not yet in the group tables when the batch is grouped in one pass)."""
        if alert.status == "resolved":  # follow the firing alert, wherever it went
            prior = set(self.dedup.channels_of(alert.fingerprint, "firing"))
            prior.update(self.grouper.waiting_for(alert.fingerprint, "firing"))
            pending = firing_to.get(alert.fingerprint) if firing_to else None
            if pending:  # those the firing will be grouped for (not the deduplicated ones)
                keys = [(c, alert.fingerprint, "firing") for c in pending]
                prior.update(k[0] for k in set(keys) - self.dedup.known(keys, now))
            known = [self.channels[c] for c in prior if c in self.channels]
            if known:
                return known
        return self.router.route(alert)


def routes_summary(
    notify_cfg: dict[str, Any] | None, *, alerts_file: str | None = None, console: bool = False
) -> list[dict[str, Any]]:
    """What each route matches and which channels (service names only) it reaches.

    For ``streamproc check-config``. Rows: ``{"route", "match", "tags", "continue",
    "channels"}``, in evaluation order, then one row for the catch-all channels. Raises
    ConfigError like the Notifier would.
    """
    from .channels import load_channels
    from .settings import parse_settings

    settings = parse_settings(notify_cfg)
    channels, _ = load_channels(settings, alerts_file=alerts_file, console=console)
    router = Router.from_settings(settings, channels)
    catch_all = {c.id for c in router._catch_all}
    rows: list[dict[str, Any]] = []
    for route in router.routes:
        reached = [c for c in router.channels_for_tags(route.tags) if c.id not in catch_all]
        rows.append(
            {
                "route": route.name,
                "match": route.describe(),
                "tags": list(route.tags),
                "continue": route.cont,
                "channels": [f"{c.service_name} {c.name}" for c in reached],
            }
        )
    rows.append(
        {
            "route": "catch-all",
            "match": "every alert",
            "tags": [],
            "continue": True,
            "channels": [f"{c.service_name} {c.name}" for c in router._catch_all],
        }
    )
    return rows
