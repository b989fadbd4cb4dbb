"""HTTP as a source: events and CI/CD webhooks POSTed to ``streamproc run --listen``.

    POST /api/v1/events/{binding}     one JSON object, a JSON array, or NDJSON
    POST /api/v1/webhooks/github      workflow_run, deployment_status
    POST /api/v1/webhooks/gitlab      Pipeline Hook, Deployment Hook
    POST /api/v1/webhooks/jenkins     Notification plugin JSON

Where a record goes, and what the 2xx promises:

- A binding read from Kafka: each record is validated by the binding's decoder first (the
  same one its consumer uses, so a rejection names the same reason), the accepted ones are
  produced to the binding's topic, and the answer waits for the broker's acknowledgement
  (acks=all). The rejected ones go to the binding's dead-letter topic (``<topic>.dlq``), the
  same place its consumer would put them. The consumer then judges the records like any
  other: a 2xx means "durably in the topic", so a process that dies after answering loses
  nothing.
- A binding read from MQTT (no Kafka for it): the records are judged at once by the Judge
  the MQTT source feeds (the same detector state), and the answer waits until their alerts
  are in the alert log and their dead letters in the dead-letter file.

Answers (JSON bodies): 200 every record accepted; 207 some rejected, with ``errors`` listing
``{index, reason, detail}`` for each (index: the record's position in the request, from 0);
400 none accepted (same body), or no record at all; 404 unknown binding (the known ones are
listed); 413 over ``ingest.max_body_bytes``; 415 a Content-Encoding other than gzip or
deflate; 429 over the client's rate (``Retry-After``);
503 the broker did not acknowledge in time (nothing is promised: send again).

The request is split into records by Content-Type: ``application/x-ndjson`` (or jsonl, or a
text/* type, or a binding that reads lines: one record a line, blank lines skipped),
``application/json`` (an array: one record per element; anything else: one record), and
otherwise sniffed (``[`` starts an array; a body that is not one JSON document but has
several lines is NDJSON). A gzip or deflate body (``Content-Encoding``) is decoded first, and
the body limit applies to what it decodes to; a body of any other encoding (br, zstd, ...) is
refused, 415 (http/encoding.py). Every body refused whole is counted
(``streamproc_ingest_refused_total``) and logged at a bounded rate.

Webhooks (see sources/webhooks.py): the provider's signature or token is checked first
(401, counted, when it is missing or wrong), then the payload is mapped onto a cicd-events
record, validated and sent on as above; an event that says nothing final is answered 202
with the reason. A delivery id seen before (within ``ingest.webhooks.dedup``) is answered
200 ``duplicate`` and not judged again.

The bearer token of ``--listen`` guards ``/api/v1/events``; webhook senders cannot send one
(GitHub, GitLab and Jenkins sign or name their own secret instead), so ``/api/v1/webhooks``
is authenticated by that secret alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from aiokafka.errors import KafkaError

from ..config import Binding
from ..decode import DeadLetter, RawRecord
from ..http.encoding import (
    SUPPORTED,
    BadEncoding,
    BodyError,
    TooLarge,
    UnsupportedEncoding,
    encoding_of,
    read_decoded,
)
from ..ops.logs import RateLimitedLog
from ..pipeline.batches import MAX_KEY_BYTES, fit_key
from . import webhooks
from .ingest import DeliveryDedup, IngestSettings, TokenBucket, webhook_binding

if TYPE_CHECKING:
    from ..pipeline.runtime import Judge

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"  # where the runner mounts ingest_app on the listener
WEBHOOKS_PATH = "/webhooks"  # (under API_PREFIX) authenticated by the provider's secret
# a 207/400 body lists at most this many rejected records (and says how many more)
MAX_LISTED_ERRORS = 1000
# seconds the answer waits for the broker before a 503
PRODUCE_TIMEOUT = 30.0

_NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-seq",
)


class Rejection:
    """A record of a request that was not accepted: its index, and its dead letter."""

    __slots__ = ("index", "dead")

    def __init__(self, index: int, dead: DeadLetter) -> None:
        self.index = index
        self.dead = dead


# -- where records go -----------------------------------------------------------------------------


class KafkaTarget:
    """Validate a binding's records with its decoder; produce the accepted ones to its topic
    (keyed as its producers key them) and the rejected ones to its ``.dlq``; both
    acknowledged before ``send`` returns."""

    def __init__(
        self,
        producer: Any,
        write_dead: Callable[[list[DeadLetter]], Awaitable[None]],
        judge: Judge,
    ) -> None:
        self.producer = producer
        self.write_dead = write_dead
        # the runtime's Judge: validate with the very decoder the consumer judges with, as a
        # config reload leaves it
        self.judge = judge

    def serves(self, binding: Binding) -> bool:
        return binding.source == "kafka" and binding.topic is not None

    async def send(self, binding: Binding, values: list[bytes]) -> tuple[int, list[Rejection]]:
        binding = self.judge.binding(binding.name) or binding
        decoder = self.judge.decoder(binding.name)
        events, dead = decoder.decode_batch(values, binding.topic or "", 0, 0)
        rejected = [Rejection(dl.offset, _from_request(dl)) for dl in dead]
        futures = [
            await self.producer.send(binding.topic, values[ev.offset], key=_key(binding, ev.data))
            for ev in events
        ]
        if rejected:
            await asyncio.gather(self.write_dead([r.dead for r in rejected]), *futures)
        elif futures:
            await asyncio.gather(*futures)
        # the consumer judges them; what its engine rejects (late...) goes to the .dlq then
        return len(events), rejected


class JudgeTarget:
    """Judge a binding's records at once, through the runtime's Judge (which decodes them
    with the binding's decoder, as for any source); alerts to the alert log, dead letters
    (the decoder's, and the engine's: late, future) to the binding's sink."""

    def __init__(
        self,
        judge: Any,
        append_alerts: Callable[[list[Any]], Awaitable[None]],
        write_dead: Callable[[list[DeadLetter]], Awaitable[None]],
    ) -> None:
        self.judge = judge
        self.append_alerts = append_alerts
        self.write_dead = write_dead
        # one request judged and made durable at a time, so alerts reach the log in the
        # order they were judged
        self.lock = asyncio.Lock()

    def serves(self, binding: Binding) -> bool:
        return binding.source == "mqtt"

    async def send(self, binding: Binding, values: list[bytes]) -> tuple[int, list[Rejection]]:
        # offset: the record's position in the request (the judge copies it to dead letters)
        raws = [RawRecord(value, binding.name, 0, i) for i, value in enumerate(values)]
        async with self.lock:
            alerts, dead = self.judge.judge(raws, "http", time.time())
            rejected = [Rejection(dl.offset, _from_request(dl)) for dl in dead]
            if alerts:
                await self.append_alerts(alerts)
            if rejected:
                await self.write_dead([r.dead for r in rejected])
        return len(values) - len(rejected), rejected


def _key(binding: Binding, data: dict[str, Any]) -> bytes | None:
    """The record's Kafka key, as the topic's producers key it (``keyed_by``, else the
    contract's key)."""
    value = data.get(binding.keyed_by) if binding.keyed_by else None
    if value is None or value == "":
        value = binding.contract.key_of(data)
    if value is None:
        return None
    raw = str(value).encode()
    return raw if len(raw) <= MAX_KEY_BYTES else fit_key(raw)


# -- splitting a body into records ----------------------------------------------------------------

_SPANS = json.JSONDecoder()


def split_records(body: bytes, content_type: str, lines: bool = False) -> list[bytes]:
    """A request body -> its records (see the module docstring)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if lines or ctype in _NDJSON_TYPES or ctype.startswith("text/"):
        return _lines(body)
    head = body.lstrip()[:1]
    if head == b"[":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            return [body]  # the decoder says what is wrong with it
        if isinstance(items, list):
            try:
                return _elements(body)
            except RecursionError:  # nested deeper than the standard library reads
                return [body]  # the decoder's depth guard says what is wrong with it
        return [body]
    if ctype != "application/json" and body.strip().count(b"\n"):
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            return _lines(body)
    return [body]


def _elements(body: bytes) -> list[bytes]:
    """The bytes of each element of a JSON array (one orjson accepted), as sent: a record
    is judged on its own bytes, so a key repeated in one element is a ``duplicate_field``
    dead letter, as it is in NDJSON or on Kafka (parsing and re-encoding would keep one of
    the two values and hide it). The spans come from the standard library's decoder, which
    reads the array a value at a time."""
    text = body.decode("utf-8")
    end = len(text)
    out: list[bytes] = []
    i = _skip_space(text, text.index("[") + 1)
    if text[i] == "]":
        return out
    while i < end:
        _, stop = _SPANS.raw_decode(text, i)
        out.append(text[i:stop].encode("utf-8"))
        i = _skip_space(text, stop)
        if text[i] != ",":
            break
        i = _skip_space(text, i + 1)
    return out


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _lines(body: bytes) -> list[bytes]:
    return [line.rstrip(b"\r") for line in body.split(b"\n") if line.strip()]


# -- the application ------------------------------------------------------------------------------


class Ingest:
    """The endpoints' state: settings, bindings, targets, limits, metrics.

    The listener starts before the runtime (a port in use fails the start first), so the
    targets come later: until ``attach``, every endpoint answers 503 (starting)."""

    def __init__(
        self,
        settings: IngestSettings,
        bindings: list[Binding] | None = None,
        targets: list[Any] | None = None,
        *,
        metrics: Any = None,
        dedup: DeliveryDedup | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.limiter = TokenBucket(settings.rate, settings.burst)
        hooks = settings.webhooks
        self.dedup = (
            dedup
            if dedup is not None
            else DeliveryDedup(None, hooks.dedup_entries, hooks.dedup_ttl)
        )
        self.bounded = RateLimitedLog(log, per_key_interval=10.0)
        self.ready = False
        self.bindings: dict[str, Binding] = {}
        self.target_of: dict[str, Any] = {}
        self.webhook_binding: Binding | None = None
        if bindings is not None and targets is not None:
            self.attach(bindings, targets)

    def attach(self, bindings: list[Binding], targets: list[Any]) -> None:
        """Serve ``bindings``, each through the first target that ``serves`` it (a binding
        no target serves, a file binding or a Kafka pattern, takes no events)."""
        for b in bindings:
            target = next((t for t in targets if t.serves(b)), None)
            if target is not None and b.name not in self.bindings:
                self.bindings[b.name] = b
                self.target_of[b.name] = target
        if self.settings.webhooks.secrets:
            self.webhook_binding = webhook_binding(self.settings, list(self.bindings.values()))
        self.ready = True

    @classmethod
    def for_config(cls, config: Any, metrics: Any = None) -> Ingest:
        """The endpoints of a config (``ingest:``, defaults without one); replays remembered
        in ``state_dir/webhook-deliveries.sqlite3``."""
        settings = config.ingest or IngestSettings()
        api = getattr(config, "api", None)
        if api is not None:  # (a copy: the config's own stays as read, for a reload to compare)
            settings = replace(settings, max_body_bytes=api.max_body_bytes)
        hooks = settings.webhooks
        dedup = (
            DeliveryDedup(
                Path(config.state_dir) / "webhook-deliveries.sqlite3",
                hooks.dedup_entries,
                hooks.dedup_ttl,
            )
            if hooks.secrets
            else None
        )
        return cls(settings, metrics=metrics, dedup=dedup)

    def attach_runtime(self, runtime: Any) -> None:
        """Serve the bindings of a started Runtime: Kafka ones through its producer, MQTT
        ones through its Judge (see the module docstring)."""
        from ..storage.dlq import FileDeadLetters, KafkaDeadLetters

        config = runtime.config
        targets: list[Any] = []
        if runtime.producer is not None and config.kafka is not None:
            kafka_dead = KafkaDeadLetters(
                runtime.producer, config.kafka.dlq_suffix, metrics=runtime.metrics
            )
            targets.append(KafkaTarget(runtime.producer, kafka_dead.write, runtime.judge))
        if config.mqtt is not None:
            file_dead = FileDeadLetters(config.mqtt.dead_letter_file, metrics=runtime.metrics)
            targets.append(JudgeTarget(runtime.judge, runtime.alert_log.append, file_dead.write))
        self.attach(config.bindings, targets)
        log.info(
            "HTTP ingest: POST %s/events/{%s}%s",
            API_PREFIX,
            ",".join(sorted(self.bindings)) or "no binding",
            "; webhooks: "
            + ", ".join(
                f"{API_PREFIX}/webhooks/{p}" for p in sorted(self.settings.webhooks.secrets)
            )
            if self.webhook_binding is not None
            else "",
        )

    # -- metrics (labels: an endpoint of this config, an outcome or reason of a closed set)

    def _count(self, endpoint: str, outcome: str, n: int = 1) -> None:
        if self.metrics is not None and n:
            self.metrics.ingest_records.labels(endpoint, outcome).inc(n)

    def _refuse(
        self,
        endpoint: str,
        reason: str,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if self.metrics is not None:
            self.metrics.ingest_refused.labels(endpoint, reason).inc()
        return _json(body, status=status, headers=headers)

    # -- shared steps

    def _not_ready(self) -> web.Response | None:
        if self.ready:
            return None
        return _json(
            {"error": "starting: try again in a moment"}, status=503, headers={"Retry-After": "2"}
        )

    def _rate_limited(self, request: web.Request, endpoint: str) -> web.Response | None:
        wait = self.limiter.take(request.remote or "")
        if wait <= 0:
            return None
        # one key for every client: the log's memory stays bounded however many there are
        self.bounded.warning(
            ("rate",),
            "ingest: client %s over its rate limit (%g/s, burst %g)",
            request.remote,
            self.settings.rate,
            self.settings.burst,
        )
        return self._refuse(
            endpoint,
            "rate_limited",
            429,
            {"error": "too many requests from this address", "retry_after": math.ceil(wait)},
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )

    async def _body(self, request: web.Request, endpoint: str) -> bytes | web.Response:
        limit = self.settings.max_body_bytes
        header = request.headers.get("Content-Encoding", "")
        try:
            length = request.content_length
            if length is not None and length > limit:
                raise TooLarge(f"the body is over the {limit} bytes one request may carry")
            if length is not None and not encoding_of(header):
                return await request.content.readexactly(length) if length else b""
            # chunked or encoded: counted while read, the limit on what it decodes to
            return await read_decoded(request.content.iter_chunked(64 * 1024), header, limit)
        except BodyError as exc:
            error = exc
        except web.RequestPayloadError as exc:  # the framing (chunked) is broken
            error = BadEncoding(f"the body could not be read: {exc}")
        body: dict[str, Any] = {"error": str(error)}
        headers = None
        status = error.status
        if isinstance(error, TooLarge):
            body["max_body_bytes"] = limit
        elif isinstance(error, UnsupportedEncoding):
            body["supported"] = list(SUPPORTED)
            headers = {"Accept-Encoding": ", ".join(SUPPORTED)}  # RFC 9110, 15.5.16
        # one key per reason: the log's memory stays bounded however many clients send
        self.bounded.warning(
            ("body", error.reason),
            "ingest: %s body from %s refused (%d): %s",
            endpoint,
            request.remote,
            status,
            body["error"],
        )
        return self._refuse(endpoint, error.reason, status, body, headers)

    async def _send(
        self, binding: Binding, endpoint: str, values: list[bytes]
    ) -> tuple[int, list[Rejection]] | web.Response:
        """(accepted, rejected) once durable, or the 503 answer."""
        try:
            async with asyncio.timeout(PRODUCE_TIMEOUT):
                sent: tuple[int, list[Rejection]] = await self.target_of[binding.name].send(
                    binding, values
                )
                return sent
        except (TimeoutError, OSError, KafkaError) as exc:
            self.bounded.error(
                ("send", binding.name),
                "ingest: records for %s not acknowledged (%s): answered 503",
                binding.name,
                type(exc).__name__,
            )
            return self._refuse(
                endpoint,
                "unavailable",
                503,
                {
                    "error": f"the records were not acknowledged "
                    f"({type(exc).__name__}); nothing is promised: "
                    f"send them again"
                },
                {"Retry-After": "5"},
            )

    # -- POST /api/v1/events/{binding}

    async def events(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["binding"]
        binding = self.bindings.get(name)
        endpoint = f"events/{name}" if binding is not None else "events"
        if (limited := self._not_ready() or self._rate_limited(request, endpoint)) is not None:
            return limited
        if binding is None:
            return self._refuse(
                endpoint,
                "unknown_binding",
                404,
                {
                    "error": f"no binding named {name[:200]!r} takes events here",
                    "bindings": sorted(self.bindings),
                },
            )
        body = await self._body(request, endpoint)
        if isinstance(body, web.Response):
            return body
        values = split_records(
            body, request.headers.get("Content-Type", ""), lines=binding.format != "json"
        )
        if not values:
            return self._refuse(
                endpoint,
                "empty",
                400,
                {"error": "the body holds no record", "accepted": 0, "rejected": 0},
            )
        sent = await self._send(binding, endpoint, values)
        if isinstance(sent, web.Response):
            return sent
        accepted, rejected = sent
        self._count(endpoint, "accepted", accepted)
        self._count(endpoint, "rejected", len(rejected))
        return _outcome(accepted, rejected)

    # -- POST /api/v1/webhooks/{provider}

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        secret = self.settings.webhooks.secrets.get(provider)
        endpoint = f"webhooks/{provider}" if provider in webhooks.PARSERS else "webhooks"
        if (limited := self._not_ready() or self._rate_limited(request, endpoint)) is not None:
            return limited
        binding = self.webhook_binding
        if secret is None or binding is None:
            return self._refuse(
                endpoint,
                "not_configured",
                404,
                {
                    "error": f"no webhook endpoint {provider[:40]!r} is configured",
                    "webhooks": sorted(self.settings.webhooks.secrets),
                },
            )
        body = await self._body(request, endpoint)
        if isinstance(body, web.Response):
            return body
        if not webhooks.verify(provider, secret, request.headers, body, request.query):
            self.bounded.warning(
                ("unauthorized", provider),
                "ingest: %s webhook from %s with a missing or wrong signature/token: refused (401)",
                provider,
                request.remote,
            )
            return self._refuse(
                endpoint, "unauthorized", 401, {"error": "missing or wrong signature or token"}
            )
        try:
            mapped = webhooks.PARSERS[provider](request.headers, orjson.loads(body))
        except (orjson.JSONDecodeError, webhooks.BadPayload) as exc:
            detail = "the body is not JSON" if isinstance(exc, orjson.JSONDecodeError) else str(exc)
            return self._refuse(endpoint, "bad_request", 400, {"error": detail})
        if isinstance(mapped, webhooks.Ignored):
            if self.metrics is not None:
                self.metrics.webhooks_ignored.labels(provider, mapped.reason).inc()
            self._count(endpoint, "ignored")
            return _json(
                {"ignored": True, "reason": mapped.reason, "detail": mapped.detail}, status=202
            )
        delivery = mapped.delivery and f"{provider}:{mapped.delivery}"
        if delivery is not None and not self.dedup.claim(delivery):
            self._count(endpoint, "duplicate")
            return _json(
                {"duplicate": True, "delivery": mapped.delivery, "accepted": 0}, status=200
            )
        try:
            sent = await self._send(binding, endpoint, [orjson.dumps(mapped.record)])
        except BaseException:
            if delivery is not None:
                self.dedup.release(delivery)
            raise
        if isinstance(sent, web.Response):
            if delivery is not None:
                self.dedup.release(delivery)
            return sent
        if delivery is not None:
            self.dedup.commit(delivery)
        accepted, rejected = sent
        self._count(endpoint, "accepted", accepted)
        self._count(endpoint, "rejected", len(rejected))
        response = _outcome(accepted, rejected)
        if mapped.delivery:
            response.headers["X-Streamproc-Delivery"] = mapped.delivery[:200]
        return response

    def close(self) -> None:
        self.dedup.close()


def _from_request(dl: DeadLetter) -> DeadLetter:
    """A decoder's dead letter of record ``dl.offset`` of a request, as its sink keeps it:
    no offset (there is none), the position said in the detail."""
    return DeadLetter(
        dl.reason,
        f"{dl.detail} (HTTP ingest: record {dl.offset} of a request)",
        dl.raw,
        dl.topic,
        dl.partition,
        -1,
        dl.key,
        dl.family,
        dl.at,
    )


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _outcome(accepted: int, rejected: list[Rejection]) -> web.Response:
    errors = [
        {"index": r.index, "reason": r.dead.reason, "detail": r.dead.detail}
        for r in sorted(rejected, key=lambda r: r.index)[:MAX_LISTED_ERRORS]
    ]
    body: dict[str, Any] = {"accepted": accepted, "rejected": len(rejected)}
    if rejected:
        body["errors"] = errors
        if len(rejected) > MAX_LISTED_ERRORS:
            body["errors_not_listed"] = len(rejected) - MAX_LISTED_ERRORS
    status = 200 if not rejected else 207 if accepted else 400
    return _json(body, status=status)


def ingest_app(ingest: Ingest) -> web.Application:
    """The endpoints as an aiohttp application, to mount at ``API_PREFIX`` (/api/v1) of a
    server that decodes no body itself (``http.encoding.SERVER_OPTIONS``, as the listener's
    is): the endpoints decode gzip and deflate bodies, and refuse others, themselves."""
    app = web.Application()
    app.router.add_post("/events/{binding}", ingest.events)
    app.router.add_post(WEBHOOKS_PATH + "/{provider}", ingest.webhook)
    return app
