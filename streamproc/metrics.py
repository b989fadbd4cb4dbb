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
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

from .redact import service_name

# Apprise deliveries take from a few ms (local webhook) to the 4 s socket timeout and beyond
# (retries); the buckets cover that range with a few points per decade.
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

DEFAULT_REQUIRED = ("sources", "state")


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
            flags = {name: False for name in self._required}
            flags.update(self._flags)
        return all(flags.values()) if flags else False, flags


class Metrics:
    """All streamproc metrics, registered in one private registry."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 process_metrics: bool = True,
                 required: Iterable[str] = DEFAULT_REQUIRED) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process_metrics:
            # process_resident_memory_bytes etc.: what --max-memory and dashboards watch.
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self.health = Health(required)

        # -- sources and decoding
        self.records_in = Counter("streamproc_records_in", "Records read from a source",
                                  ["topic"], registry=r)
        self.records_decoded = Counter("streamproc_records_decoded",
                                       "Records decoded into events", ["topic"], registry=r)
        self.dead_letters = Counter("streamproc_dead_letters",
                                    "Records dead-lettered, by reason", ["topic", "reason"],
                                    registry=r)
        self.dead_letters_cut = Counter("streamproc_dead_letters_cut",
                                        "Dead letters whose payload was cut to fit their sink "
                                        "(a prefix, the full length and SHA-256 kept)",
                                        ["topic"], registry=r)
        self.dead_letters_oversize = Counter("streamproc_dead_letters_oversize",
                                             "Dead letters refused for size by the producer or "
                                             "the broker, written without their payload",
                                             ["topic"], registry=r)
        self.late_events = Counter("streamproc_late_events",
                                   "Events behind the watermark (dead-lettered as late)",
                                   ["topic"], registry=r)
        self.consumer_lag = Gauge("streamproc_consumer_lag",
                                  "Records between the committed and the last offset",
                                  ["topic", "partition"], registry=r)
        self.consumption_paused = Gauge("streamproc_consumption_paused",
                                        "1 while consumption is paused (memory guard, "
                                        "backpressure)", registry=r)
        self.startup_seconds = Gauge("streamproc_startup_seconds",
                                     "Seconds from process start to the first record judged "
                                     "(phase first_record), and each start-up phase's length",
                                     ["phase"], registry=r)

        # -- HTTP ingest (sources/http.py); endpoint: events/<binding> or webhooks/<provider>
        self.ingest_records = Counter("streamproc_ingest_records",
                                      "Records received over HTTP, by endpoint and outcome "
                                      "(accepted, rejected, duplicate, ignored)",
                                      ["endpoint", "outcome"], registry=r)
        self.ingest_refused = Counter("streamproc_ingest_refused",
                                      "HTTP ingest requests refused whole, by endpoint and "
                                      "reason (unauthorized, rate_limited, too_large, "
                                      "unknown_binding, not_configured, bad_request, empty, "
                                      "unavailable)", ["endpoint", "reason"], registry=r)
        self.webhooks_ignored = Counter("streamproc_webhooks_ignored",
                                        "Webhook deliveries answered 202 and not judged, by "
                                        "provider and reason (event_type, in_progress, phase)",
                                        ["provider", "reason"], registry=r)

        # -- detectors
        self.detector_evaluations = Counter("streamproc_detector_evaluations",
                                            "Events judged by a detector", ["kind"], registry=r)
        self.detector_firings = Counter("streamproc_detector_firings",
                                        "Alerts a detector raised", ["kind"], registry=r)
        self.active_incidents = Gauge("streamproc_active_incidents",
                                      "Incidents firing and not yet resolved", ["kind"],
                                      registry=r)
        self.state_keys = Gauge("streamproc_state_keys", "Keys held in a detector's state",
                                ["detector"], registry=r)
        self.state_evictions = Counter("streamproc_state_evictions",
                                       "Keys evicted by a detector's key cap (LRU)",
                                       ["detector"], registry=r)

        # -- alerts and delivery
        self.alerts = Counter("streamproc_alerts", "Alerts raised", ["kind", "severity"],
                              registry=r)
        self.deliveries = Counter("streamproc_deliveries",
                                  "Notification deliveries by channel (service name) and "
                                  "outcome", ["channel", "outcome"], registry=r)
        self.delivery_latency_seconds = Histogram("streamproc_delivery_latency_seconds",
                                                  "Time to deliver one notification",
                                                  ["channel"], buckets=DELIVERY_BUCKETS,
                                                  registry=r)
        self.delivery_backlog = Gauge("streamproc_delivery_backlog",
                                      "Notifications waiting to be delivered", registry=r)
        self.notify_dead_letters = Counter("streamproc_notify_dead_letters",
                                           "Alerts notify/ dead-lettered, by reason (no_route, "
                                           "delivery_failed, channel_removed)", ["reason"],
                                           registry=r)

        # -- operations
        self.config_reloads = Counter("streamproc_config_reloads",
                                      "Config reloads by outcome (ok, rejected)", ["outcome"],
                                      registry=r)
        self.config_last_reload_success = Gauge(
            "streamproc_config_last_reload_success_timestamp_seconds",
            "When the running config was last (re)loaded", registry=r)
        self.log_messages_suppressed = Counter("streamproc_log_messages_suppressed",
                                               "Repeated log messages dropped by the rate "
                                               "limit", registry=r)
        self.build_info = Info("streamproc_build", "streamproc version", registry=r)
        from . import __version__
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

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (what ``/metrics`` returns)."""
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


class MetricsServer:
    """A small threaded HTTP server for /metrics, /healthz and /readyz."""

    def __init__(self, metrics: Metrics, port: int, host: str) -> None:
        self.metrics = metrics
        handler = _make_handler(metrics)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http",
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _make_handler(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "streamproc"

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                ready, flags = metrics.health.status()
                body = "".join(f"{name}: {'ready' if ok else 'not ready'}\n"
                               for name, ok in sorted(flags.items()))
                self._send(200 if ready else 503, body.encode())
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n")

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def _send(self, status: int, body: bytes,
                  content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # scrapes every 15 s would drown the log

    return Handler


def start_http_server(port: int, host: str = "127.0.0.1",
                      metrics: Metrics | None = None) -> MetricsServer:
    """Serve ``metrics`` (default: ``default_metrics()``) on ``host:port`` in a daemon thread.
    ``port=0`` picks a free port (``server.port``). Close with ``server.close()``."""
    return MetricsServer(metrics or default_metrics(), port, host)
