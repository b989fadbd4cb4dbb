"""HTTP ingest: its settings (``ingest:`` of the config), the per-client rate limit and the
webhook delivery dedup. No aiohttp here (config loading imports this module); the endpoints
themselves are in ``sources/http.py``.

    ingest:                          # (the body limit and the bearer token: api: of --listen)
      rate_limit:                    # per client address (token bucket); 0 turns it off
        per_second: 50               #   requests refilled per second
        burst: 200                   #   requests a client may send at once
      webhooks:
        binding: cicd-events         # the binding webhook events go to (default: the first
                                     #   binding of family cicd-events)
        dedup: {max_entries: 100000, ttl: 259200}
        github:  {secret: ${GITHUB_WEBHOOK_SECRET}}   # X-Hub-Signature-256 (HMAC-SHA256)
        gitlab:  {secret: ${GITLAB_WEBHOOK_TOKEN}}    # X-Gitlab-Token
        jenkins: {secret: ${JENKINS_WEBHOOK_TOKEN}}   # ?token=... or X-Streamproc-Token
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

PROVIDERS = ("github", "gitlab", "jenkins")
DEFAULT_MAX_BODY = 1024 * 1024
# GitHub lets a user redeliver a delivery of the past three days: a replay within that time
# is caught by default.
DEFAULT_DEDUP_TTL = 3 * 86400.0
DEFAULT_DEDUP_ENTRIES = 100_000


@dataclass(slots=True)
class WebhookSettings:
    secrets: dict[str, str] = field(default_factory=dict)  # provider -> secret (configured)
    binding: str | None = None
    dedup_entries: int = DEFAULT_DEDUP_ENTRIES
    dedup_ttl: float = DEFAULT_DEDUP_TTL


@dataclass(slots=True)
class IngestSettings:
    # the listener's (api.max_body_bytes); the endpoints check it again while reading a body
    max_body_bytes: int = DEFAULT_MAX_BODY
    rate: float = 50.0  # requests per second per client; 0: no limit
    burst: float = 200.0
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    def __repr__(self) -> str:  # never print the secrets
        return (
            f"IngestSettings(max_body_bytes={self.max_body_bytes}, rate={self.rate}, "
            f"burst={self.burst}, webhooks={sorted(self.webhooks.secrets)})"
        )


def _line(node: Any, key: str | None = None) -> int | None:
    from ..config import _line as line_of

    return line_of(node, key)


def _number(
    node: dict[str, Any],
    key: str,
    where: str,
    file: str | None,
    *,
    minimum: float,
    integer: bool = False,
) -> Any:
    value = node[key]
    if isinstance(value, str):  # ${NAME} gives a string
        try:
            value = float(value.strip())
        except ValueError:
            value = None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
        or (integer and value != int(value))
    ):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(
            f"{where}.{key} must be {kind} >= {minimum:g}, not {node[key]!r}",
            file=file,
            line=_line(node, key),
        )
    return int(value) if integer else float(value)


def _mapping(
    node: Any, where: str, known: set[str], file: str | None, line: int | None
) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ConfigError(f"{where} must be a mapping", file=file, line=line)
    unknown = sorted(set(node) - known, key=str)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}",
            file=file,
            line=_line(node, str(unknown[0])),
            hint=f"known keys: {', '.join(sorted(known))}",
        )
    return node


def parse_ingest(node: Any, file: str | None) -> IngestSettings:
    """``ingest:`` -> IngestSettings; the first problem is a ConfigError at its line."""
    node = _mapping(node, "'ingest'", {"rate_limit", "webhooks"}, file, _line(node))
    out = IngestSettings()
    rl = node.get("rate_limit")
    if rl is not None:
        if rl == 0 or rl is False:
            out.rate = 0.0
        else:
            rl = _mapping(
                rl, "ingest.rate_limit", {"per_second", "burst"}, file, _line(node, "rate_limit")
            )
            if rl.get("per_second") is not None:
                out.rate = _number(rl, "per_second", "ingest.rate_limit", file, minimum=0)
            if rl.get("burst") is not None:
                out.burst = _number(rl, "burst", "ingest.rate_limit", file, minimum=1)
    hooks = node.get("webhooks")
    if hooks is not None:
        out.webhooks = _parse_webhooks(hooks, file, _line(node, "webhooks"))
    return out


def _parse_webhooks(node: Any, file: str | None, line: int | None) -> WebhookSettings:
    node = _mapping(node, "ingest.webhooks", {"binding", "dedup", *PROVIDERS}, file, line)
    out = WebhookSettings()
    if node.get("binding") is not None:
        out.binding = str(node["binding"])
    dedup = node.get("dedup")
    if dedup is not None:
        dedup = _mapping(
            dedup, "ingest.webhooks.dedup", {"max_entries", "ttl"}, file, _line(node, "dedup")
        )
        if dedup.get("max_entries") is not None:
            out.dedup_entries = _number(
                dedup, "max_entries", "ingest.webhooks.dedup", file, minimum=1, integer=True
            )
        if dedup.get("ttl") is not None:
            out.dedup_ttl = _number(dedup, "ttl", "ingest.webhooks.dedup", file, minimum=1)
    for provider in PROVIDERS:
        if provider not in node:
            continue
        where = f"ingest.webhooks.{provider}"
        one = _mapping(node[provider], where, {"secret"}, file, _line(node, provider))
        secret = one.get("secret")
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(
                f"{where}.secret must be a non-empty string (the shared secret {provider} sends)",
                file=file,
                line=_line(one, "secret") or _line(node, provider),
                hint="write secret: ${NAME} and export NAME; leave the provider "
                "out to turn its endpoint off",
            )
        out.secrets[provider] = secret
    return out


def check_webhook_binding(
    settings: IngestSettings, bindings: list[Any], file: str | None, line: int | None
) -> None:
    """The binding webhook events go to must exist, be of family cicd-events, and read the
    contract's own field names (webhooks produce records in them)."""
    hooks = settings.webhooks
    if not hooks.secrets:
        return
    binding = webhook_binding(settings, bindings)
    if binding is None:
        raise ConfigError(
            "ingest.webhooks: no binding of family cicd-events"
            if hooks.binding is None
            else f"ingest.webhooks.binding: no topic binding named {hooks.binding!r}",
            file=file,
            line=line,
            hint="bind the cicd-events family in topics:, or name one with webhooks.binding",
        )
    if binding.family != "cicd-events":
        raise ConfigError(
            f"ingest.webhooks.binding {binding.name!r} is of family "
            f"{binding.family!r}, not cicd-events",
            file=file,
            line=line,
        )
    if binding.format != "json" or binding.mapping is not None:
        raise ConfigError(
            f"ingest.webhooks.binding {binding.name!r} maps fields or reads "
            f"lines: webhook events are JSON records in the contract's own field "
            f"names",
            file=file,
            line=line,
            hint="bind a topic of family cicd-events without fields:/format: for webhooks",
        )


def webhook_binding(settings: IngestSettings, bindings: list[Any]) -> Any:
    name = settings.webhooks.binding
    for b in bindings:
        if (
            (b.name == name)
            if name is not None
            else (b.family == "cicd-events" and b.source in ("kafka", "mqtt"))
        ):
            return b
    return None


class TokenBucket:
    """Per-client token buckets: ``rate`` tokens a second, at most ``burst`` held; a request
    takes one. At most ``max_clients`` buckets are kept (the least recently seen go first: a
    forgotten client starts again with a full bucket)."""

    def __init__(self, rate: float, burst: float, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """0 if the request may go, else the seconds until it could (Retry-After)."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, at = self.buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self.buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        if len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


class DeliveryDedup:
    """Webhook deliveries already judged, by the provider's delivery id: at most
    ``max_entries``, each kept ``ttl`` seconds, in memory and (with a ``path``) in a small
    SQLite file that a restart reads back.

    Order of operations: ``claim(id)`` before the records are produced or judged (a second
    request with the same id meanwhile is a duplicate), ``commit(id)`` once they are durable,
    ``release(id)`` when that failed (the provider's retry is then judged). A crash between
    the records being durable and ``commit`` forgets the id: the provider's redelivery is
    judged a second time (at least once).
    """

    def __init__(
        self,
        path: Path | None,
        max_entries: int = DEFAULT_DEDUP_ENTRIES,
        ttl: float = DEFAULT_DEDUP_TTL,
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.seen: OrderedDict[str, float] = OrderedDict()
        self.pending: set[str] = set()
        self.db: sqlite3.Connection | None = None
        self._writes = 0
        if path is not None:
            from ..storage.files import private_dir, private_file

            private_dir(path.parent)
            self.db = sqlite3.connect(
                private_file(path), isolation_level=None, check_same_thread=False
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, at REAL NOT NULL)"
            )
            self.db.execute("CREATE INDEX IF NOT EXISTS deliveries_at ON deliveries (at)")
            rows = self.db.execute(
                "SELECT id, at FROM deliveries WHERE at > ? ORDER BY at DESC LIMIT ?",
                (time.time() - ttl, max_entries),
            ).fetchall()
            for key, at in reversed(rows):
                self.seen[key] = at

    def __len__(self) -> int:
        return len(self.seen)

    def claim(self, key: str, now: float | None = None) -> bool:
        """True if ``key`` is new (and now pending); False for a duplicate."""
        now = time.time() if now is None else now
        at = self.seen.get(key)
        if at is not None and now - at < self.ttl:
            return False
        if key in self.pending:
            return False
        self.pending.add(key)
        return True

    def commit(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.pending.discard(key)
        self.seen.pop(key, None)
        self.seen[key] = now
        while len(self.seen) > self.max_entries:
            self.seen.popitem(last=False)
        if self.db is not None:
            self.db.execute("INSERT OR REPLACE INTO deliveries (id, at) VALUES (?, ?)", (key, now))
            self._writes += 1
            if self._writes % 1000 == 0:
                self._trim(now)

    def release(self, key: str) -> None:
        self.pending.discard(key)

    def _trim(self, now: float) -> None:
        assert self.db is not None
        self.db.execute("DELETE FROM deliveries WHERE at <= ?", (now - self.ttl,))
        self.db.execute(
            "DELETE FROM deliveries WHERE id NOT IN (SELECT id FROM deliveries "
            "ORDER BY at DESC LIMIT ?)",
            (self.max_entries,),
        )

    def close(self) -> None:
        if self.db is not None:
            self._trim(time.time())
            self.db.close()
            self.db = None
