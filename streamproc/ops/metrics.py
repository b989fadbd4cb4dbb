"""Prometheus metrics and the health endpoints (``/metrics``, ``/healthz``, ``/readyz``).

Every metric lives in one ``Metrics`` object with its own ``CollectorRegistry`` (never the
global one), so a test or a second runtime in the same process starts from zero. The runtime
holds one ``Metrics`` and passes it around; ``default_metrics()`` is the process-wide one that
``streamproc run`` serves.

Hot-path cost: ``labels(...)`` takes a lock and a dict lookup (~1 us). Call it once per batch
(``m.records_in.labels(topic).inc(len(batch))``), or keep the child it returns
(``child = m.records_in.labels(topic)``) and call ``child.inc(n)``: a child is stable for the
life of the registry.

Label rules: ``topic`` and ``partition`` are what the source reports; ``reason`` is one of
``decode.deadletter.REASONS``; ``kind`` is a detector kind; ``channel`` is an Apprise service
name (``slack``, ``json``, ``mailto``...), never a URL: ``record_delivery`` reduces whatever it
is given with ``redact.service_name`` so a URL with a token cannot leak into a label.

Readiness: ``/readyz`` answers 200 only once every required component (by default
``sources`` and ``state``) has been marked ready with ``set_ready(component, True)`` and no
component is marked not ready; ``/healthz`` answers 200 while the process serves HTTP at all.

Serving: ``routes(metrics)`` are mounted on the one HTTP listener of ``streamproc run``
(http/listener.py); ``start_http_server`` serves them alone, in a thread, for code with no
event loop of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .redact import service_name

if TYPE_CHECKING:
    from aiohttp import web

# Apprise deliveries take from a few ms (local webhook) to the 4 s socket timeout and beyond
# (retries); the buckets cover that range with a few points per decade.
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

DEFAULT_REQUIRED = ("sources", "state")


class PublishedTable(Protocol):
    """What a table that publishes its entries to a topic counts (notify/active.py's
    KafkaActiveAlerts)."""

    published: int
    failed_sends: int
    dropped: int
    unencodable: int

    @property
    def pending(self) -> int: ...


class _ActivePublishing:
    """The active-alerts table's publishing, read from the table's own counters at each
    scrape: the table counts where it sends, and knows nothing of Prometheus."""

    def __init__(self) -> None:
        self.table: PublishedTable | None = None

    def collect(self) -> Iterable[Any]:
        table = self.table
        if table is None:
            return
        entries = CounterMetricFamily(
            "streamproc_active_alerts_entries",
            "Entries of the active-alerts table for its Kafka topic, by outcome: published, "
            "dropped (the queue of unpublished entries full), unencodable (an alert no "
            "record can hold)",
            labels=["outcome"],
        )
        entries.add_metric(["published"], table.published)
        entries.add_metric(["dropped"], table.dropped)
        entries.add_metric(["unencodable"], table.unencodable)
        yield entries
        yield CounterMetricFamily(
            "streamproc_active_alerts_send_failures",
            "Sends of active-alerts entries the broker refused (each sent again)",
            value=table.failed_sends,
        )
        yield GaugeMetricFamily(
            "streamproc_active_alerts_pending",
            "Active-alerts entries waiting to be published (refused ones included)",
            value=table.pending,
        )


class Health:
    """Readiness flags set by the runtime's components; thread-safe (the HTTP server reads them
    from its own thread)."""

    def __init__(self, required: Iterable[str] = DEFAULT_REQUIRED) -> None:
        self._lock = threading.Lock()
        self._required = set(required)
        self._flags: dict[str, bool] = {}
        self.started_at = time.time()

    def require(self, *components: str) -> None:
        """Add components that must be ready before ``/readyz`` answers 200."""
        with self._lock:
            self._required.update(components)

    def set_ready(self, component: str, ready: bool = True) -> None:
        with self._lock:
            self._flags[component] = bool(ready)

    def status(self) -> tuple[bool, dict[str, bool]]:
        """(ready, flags of every known component: required ones default to False)."""
        with self._lock:
            flags = dict.fromkeys(self._required, False)
            flags.update(self._flags)
        return all(flags.values()) if flags else False, flags


class Metrics:
    """All streamproc metrics, registered in one private registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process_metrics: bool = True,
        required: Iterable[str] = DEFAULT_REQUIRED,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process_metrics:
            # process_resident_memory_bytes etc.: what --max-memory and dashboards watch.
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self.health = Health(required)

        # -- sources and decoding
        self.records_in = Counter(
            "streamproc_records_in", "Records read from a source", ["topic"], registry=r
        )
        self.records_decoded = Counter(
            "streamproc_records_decoded", "Records decoded into events", ["topic"], registry=r
        )
        self.batches_judged = Counter(
            "streamproc_batches_judged",
            "Batches of a task judged, by how: from their columns "
            "or per event (docs/detectors.md, Judging from columns)",
            ["binding", "path"],
            registry=r,
        )
        self.dead_letters = Counter(
            "streamproc_dead_letters",
            "Records dead-lettered, by reason",
            ["topic", "reason"],
            registry=r,
        )
        self.dead_letters_cut = Counter(
            "streamproc_dead_letters_cut",
            "Dead letters whose payload was cut to fit their sink "
            "(a prefix, the full length and SHA-256 kept)",
            ["topic"],
            registry=r,
        )
        self.dead_letters_oversize = Counter(
            "streamproc_dead_letters_oversize",
            "Dead letters refused for size by the producer or "
            "the broker, written without their payload",
            ["topic"],
            registry=r,
        )
        self.late_events = Counter(
            "streamproc_late_events",
            "Events behind the watermark (dead-lettered as late)",
            ["topic"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "streamproc_consumer_lag",
            "Records between the committed and the last offset",
            ["topic", "partition"],
            registry=r,
        )
        self.consumption_paused = Gauge(
            "streamproc_consumption_paused",
            "1 while consumption is paused (memory guard, backpressure)",
            registry=r,
        )
        self.startup_seconds = Gauge(
            "streamproc_startup_seconds",
            "Seconds from process start to the first record judged "
            "(phase first_record), and each start-up phase's length",
            ["phase"],
            registry=r,
        )

        # -- HTTP ingest (sources/http.py); endpoint: events/<binding> or webhooks/<provider>
        self.ingest_records = Counter(
            "streamproc_ingest_records",
            "Records received over HTTP, by endpoint and outcome "
            "(accepted, rejected, duplicate, ignored)",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.ingest_refused = Counter(
            "streamproc_ingest_refused",
            "HTTP ingest requests refused whole, by endpoint and "
            "reason (unauthorized, rate_limited, too_large, unsupported_encoding, "
            "unknown_binding, not_configured, bad_request, empty, "
            "unavailable)",
            ["endpoint", "reason"],
            registry=r,
        )
        self.webhooks_ignored = Counter(
            "streamproc_webhooks_ignored",
            "Webhook deliveries answered 202 and not judged, by "
            "provider and reason (event_type, in_progress, phase)",
            ["provider", "reason"],
            registry=r,
        )

        # -- detectors
        self.detector_evaluations = Counter(
            "streamproc_detector_evaluations", "Events judged by a detector", ["kind"], registry=r
        )
        self.detector_firings = Counter(
            "streamproc_detector_firings", "Alerts a detector raised", ["kind"], registry=r
        )
        self.rule_firings = Counter(
            "streamproc_rule_firings",
            "Alerts a rule raised, by rule id (a rule file's name, a "
            "Sigma rule's id) and source (rules, sigma)",
            ["rule", "source"],
            registry=r,
        )
        self.active_incidents = Gauge(
            "streamproc_active_incidents",
            "Incidents firing and not yet resolved",
            ["kind"],
            registry=r,
        )
        self._active_kinds: Callable[[], Iterable[str]] | None = None  # count_active
        self._active_publishing = _ActivePublishing()  # watch_active_publishing
        r.register(self._active_publishing)
        self.state_keys = Gauge(
            "streamproc_state_keys", "Keys held in a detector's state", ["detector"], registry=r
        )
        self.state_evictions = Counter(
            "streamproc_state_evictions",
            "Keys evicted by a detector's key cap (LRU)",
            ["detector"],
            registry=r,
        )

        # -- alerts and delivery
        self.alerts = Counter(
            "streamproc_alerts", "Alerts raised", ["kind", "severity"], registry=r
        )
        self.deliveries = Counter(
            "streamproc_deliveries",
            "Notification deliveries by channel (service name) and outcome",
            ["channel", "outcome"],
            registry=r,
        )
        self.delivery_latency_seconds = Histogram(
            "streamproc_delivery_latency_seconds",
            "Time to deliver one notification",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.delivery_backlog = Gauge(
            "streamproc_delivery_backlog", "Notifications waiting to be delivered", registry=r
        )
        self.notify_dead_letters = Counter(
            "streamproc_notify_dead_letters",
            "Alerts notify/ dead-lettered, by reason (no_route, delivery_failed, channel_removed)",
            ["reason"],
            registry=r,
        )

        # -- operations
        self.config_reloads = Counter(
            "streamproc_config_reloads",
            "Config reloads by outcome (ok, rejected)",
            ["outcome"],
            registry=r,
        )
        self.config_last_reload_success = Gauge(
            "streamproc_config_last_reload_success_timestamp_seconds",
            "When the running config was last (re)loaded",
            registry=r,
        )
        self.log_messages_suppressed = Counter(
            "streamproc_log_messages_suppressed",
            "Repeated log messages dropped by the rate limit",
            registry=r,
        )
        self.build_info = Info("streamproc_build", "streamproc version", registry=r)
        from .. import __version__

        self.build_info.info({"version": __version__})
        self.config_last_reload_success.set_to_current_time()

    # -- conveniences that keep label hygiene in one place -------------------------------

    def record_delivery(self, channel: str, outcome: str, seconds: float | None = None) -> None:
        """Count one delivery. ``channel`` may be a service name or (by mistake) an Apprise
        URL: only the service name is ever used as a label."""
        name = service_name(channel)
        self.deliveries.labels(name, outcome).inc()
        if seconds is not None:
            self.delivery_latency_seconds.labels(name).observe(seconds)

    def record_notify_dead_letters(self, reason: str, n: int) -> None:
        """Count ``n`` alerts that notify/ dead-lettered (``Notifier.on_dead_letter``)."""
        self.notify_dead_letters.labels(reason).inc(n)

    def set_ready(self, component: str, ready: bool = True) -> None:
        self.health.set_ready(component, ready)

    def count_active(self, kinds: Callable[[], Iterable[str]] | None) -> None:
        """Set ``streamproc_active_incidents`` at every scrape from ``kinds``: the kind of
        each incident firing now (the active-alerts table, notify/active.py)."""
        self._active_kinds = kinds

    def watch_active_publishing(self, table: PublishedTable | None) -> None:
        """Report ``table``'s publishing at every scrape (``streamproc_active_alerts_*``)."""
        self._active_publishing.table = table

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (what ``/metrics`` returns)."""
        kinds = self._active_kinds
        if kinds is not None:
            counts: dict[str, int] = {}
            for kind in kinds():
                counts[kind] = counts.get(kind, 0) + 1
            self.active_incidents.clear()  # a kind with nothing firing reads as absent
            for kind, n in counts.items():
                self.active_incidents.labels(kind).set(n)
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """One sample's value, e.g. ``value("streamproc_records_in_total", {"topic": "t"})``
        (tests and the check-config/ops tooling)."""
        return self.registry.get_sample_value(name, labels or {})


_default: Metrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> Metrics:
    """The process-wide Metrics (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default


def set_ready(component: str, ready: bool = True) -> None:
    """Mark a component of the default Metrics ready (or not)."""
    default_metrics().set_ready(component, ready)


def routes(metrics: Metrics) -> list[web.RouteDef]:
    """``/metrics``, ``/healthz`` and ``/readyz`` of ``metrics``, for the HTTP listener
    (http/listener.py). HEAD is answered too (aiohttp adds it to each GET)."""
    from aiohttp import web  # here: the metrics themselves do not need it

    text = "text/plain; charset=utf-8"

    async def exposition(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(body=b"ok\n", headers={"Content-Type": text})

    async def readyz(_request: web.Request) -> web.Response:
        ready, flags = metrics.health.status()
        body = "".join(
            f"{name}: {'ready' if ok else 'not ready'}\n" for name, ok in sorted(flags.items())
        )
        return web.Response(
            status=200 if ready else 503, body=body.encode(), headers={"Content-Type": text}
        )

    return [
        web.get("/metrics", exposition),
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
    ]


class MetricsServer:
    """The metrics routes on an HTTP listener of their own, in a thread with its own event
    loop: for callers that have no loop (tests, tools). ``streamproc run`` mounts
    ``routes(metrics)`` on its one listener instead."""

    def __init__(self, metrics: Metrics, port: int, host: str) -> None:
        from ..http.listener import Listener

        self.metrics = metrics
        self.host = host
        self.listener = Listener(host, port)
        self.listener.add_routes(routes(metrics))
        self.loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.thread = threading.Thread(
            target=self._serve, args=(started,), name="metrics-http", daemon=True
        )
        self.thread.start()
        started.result()  # raises the bind error, if any
        self.port: int = self.listener.port

    def _serve(self, started: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.listener.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            started.set_exception(exc)
            self.loop.close()
            return
        started.set_result(None)
        self.loop.run_forever()
        self.loop.run_until_complete(self.listener.stop())
        self.loop.close()

    @property
    def address(self) -> tuple[str, int]:
        """The address the socket is bound to."""
        return self.listener.address

    @property
    def url(self) -> str:
        return self.listener.url

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start_http_server(
    port: int, host: str = "127.0.0.1", metrics: Metrics | None = None
) -> MetricsServer:
    """Serve ``metrics`` (default: ``default_metrics()``) on ``host:port`` in a daemon thread.
    ``port=0`` picks a free port (``server.port``). Close with ``server.close()``."""
    return MetricsServer(metrics or default_metrics(), port, host)
