"""The parts of Alertmanager's API v2 its clients use (amtool, Grafana's Alertmanager data
source, scripts), served by ``streamproc run --listen`` on the one HTTP listener.

    GET    /api/v2/alerts          active alerts (filter=, active/silenced/inhibited/unprocessed)
    GET    /api/v2/alerts/groups   the same, grouped by receiver and notify.group_by
    GET    /api/v2/silences        every silence (filter=: silences with those matchers)
    POST   /api/v2/silences        add a silence, or replace one (with its id) -> {"silenceID"}
    GET    /api/v2/silence/{id}    one silence
    DELETE /api/v2/silence/{id}    expire it now
    GET    /api/v2/receivers       the channels alerts are routed to (names without secrets)
    GET    /api/v2/status          version, uptime, the config (secrets masked)
    GET    /-/healthy, /-/ready    health (no token needed)
    POST   /-/reload               reload the config, as SIGHUP does

Where the answers come from, so that every worker of a deployment answers alike:

- alerts: the active-alerts table (notify/active.py), which every worker reads from
  ``<application_id>.alerts.active``;
- silences: the notifier's silence stage, the same silences as ``streamproc silence``
  (``<application_id>.silences`` with Kafka; the state directory's notify.db without): a
  silence added here mutes deliveries in every worker, and one added by the CLI shows here;
- inhibition: notify's inhibit rules applied to the active alerts (an alert is inhibited
  by an active source alert, as Alertmanager computes it from its alerts);
- receivers: notify's routes for each alert (channel names, redacted as in the logs).

Nothing posted here reaches the detectors: POST /api/v2/alerts is not served (405).

Errors are Alertmanager's: a 400 whose body is a JSON string saying what was wrong
(``"bad matcher format: {a=}"``), a 404 for an unknown silence.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

from ..errors import StreamprocError
from ..notify.inhibit import inhibited_by
from ..notify.silences import match_labels
from . import am_shapes
from .am_shapes import BadMatcher
from .encoding import BodyError, decode_body

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..config import Config
    from ..notify.active import ActiveAlert, ActiveAlerts
    from ..notify.notifier import Notifier
    from ..notify.silences import Silence, SilenceStage

log = logging.getLogger("streamproc.http")

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class Sources(Protocol):
    """What the API reads, from the running runtime (runtime.py); None until started."""

    @property
    def active_alerts(self) -> ActiveAlerts | None: ...

    @property
    def notifier(self) -> Notifier | None: ...


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response(message, status=status)


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None:
        return True  # every flag defaults to true
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise web.HTTPBadRequest(
        text=orjson.dumps(f"{name} must be true or false, not {value[:40]!r}").decode(),
        content_type="application/json",
    )


class AlertmanagerAPI:
    """The routes above, over ``sources`` (the runtime) and the loaded ``config``."""

    def __init__(
        self,
        sources: Sources,
        config: Config,
        *,
        worker: int | None = None,
        started: float | None = None,
    ) -> None:
        self.sources = sources
        self.config = config
        self.worker = worker
        self.started = time.time() if started is None else started
        # set once the runtime runs with a config file (commands/run.py): what POST /-/reload does
        self.reload: Callable[[], Awaitable[Any]] | None = None

    def app(self) -> web.Application:
        """The /api/v2 routes, to mount at ``/api/v2``."""
        app = web.Application()
        app.add_routes(
            [
                web.get("/alerts", self.get_alerts),
                web.get("/alerts/groups", self.get_alert_groups),
                web.get("/silences", self.get_silences),
                web.post("/silences", self.post_silences),
                web.get("/silence/{id}", self.get_silence),
                web.delete("/silence/{id}", self.delete_silence),
                web.get("/receivers", self.get_receivers),
                web.get("/status", self.get_status),
            ]
        )
        return app

    def root_routes(self) -> list[web.RouteDef]:
        return [
            web.get("/-/healthy", self.healthy),
            web.get("/-/ready", self.ready),
            web.post("/-/reload", self.post_reload),
        ]

    # -- what the runtime provides ----------------------------------------------------------

    def _parts(self) -> tuple[ActiveAlerts, Notifier]:
        active = self.sources.active_alerts
        notifier = self.sources.notifier
        if active is None or notifier is None or getattr(notifier, "silences", None) is None:
            raise web.HTTPServiceUnavailable(
                text=orjson.dumps("streamproc is starting: try again in a moment").decode(),
                content_type="application/json",
            )
        return active, notifier

    def _silences(self) -> SilenceStage:
        return self._parts()[1].silences

    # -- alerts -----------------------------------------------------------------------------

    def _gettable(self, request: web.Request) -> list[tuple[ActiveAlert, dict[str, Any]]]:
        """(entry, gettableAlert) of every active alert that passes the query's filters."""
        try:
            matchers = am_shapes.parse_filter(request.query.getall("filter", []))
        except BadMatcher as exc:
            raise web.HTTPBadRequest(
                text=orjson.dumps(str(exc)).decode(), content_type="application/json"
            ) from None
        receiver_re = None
        if "receiver" in request.query:
            try:
                receiver_re = re.compile(request.query["receiver"])
            except re.error as exc:
                raise web.HTTPBadRequest(
                    text=orjson.dumps(f"failed to parse receiver param: {exc}").decode(),
                    content_type="application/json",
                ) from None
        show_active, show_silenced = _flag(request, "active"), _flag(request, "silenced")
        show_inhibited = _flag(request, "inhibited")
        _flag(request, "unprocessed")  # checked; nothing here is ever unprocessed
        active, notifier = self._parts()
        now = time.time()
        entries = active.current(now)
        silences = notifier.silences.active(now)
        inhibitors = inhibited_by(notifier.inhibit_rules, [e.alert for e in entries])
        out = []
        for e in entries:
            labels = am_shapes.am_labels(e.alert)
            if not all(m.matches(labels) for m in matchers):
                continue
            receivers = [ch.name for ch in notifier.router.route(e.alert)]
            if receiver_re is not None and not any(receiver_re.fullmatch(r) for r in receivers):
                continue
            matchable = match_labels(e.alert)
            silenced = [s.id for s in silences if s.matches(matchable)]
            inhibited = inhibitors.get(e.alert.fingerprint, [])
            if (
                (not show_silenced and silenced)
                or (not show_inhibited and inhibited)
                or (not show_active and not silenced and not inhibited)
            ):
                continue
            out.append(
                (
                    e,
                    am_shapes.gettable_alert(
                        e.alert,
                        updated=e.updated,
                        ends=e.ends,
                        receivers=receivers,
                        silenced_by=silenced,
                        inhibited_by=inhibited,
                    ),
                )
            )
        return out

    async def get_alerts(self, request: web.Request) -> web.Response:
        return web.json_response([a for _e, a in self._gettable(request)], dumps=_dumps)

    async def get_alert_groups(self, request: web.Request) -> web.Response:
        alerts = self._gettable(request)
        _active, notifier = self._parts()
        group_by = [
            am_shapes.label_name("alertname" if g == "kind" else g)
            for g in notifier.settings.group_by
        ]
        groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[dict[str, Any]]] = {}
        for _e, a in alerts:
            key_labels = tuple((g, a["labels"][g]) for g in group_by if g in a["labels"])
            for r in a["receivers"] or [{"name": "none"}]:
                groups.setdefault((r["name"], key_labels), []).append(a)
        body = [
            {"labels": dict(labels), "receiver": {"name": receiver}, "alerts": members}
            for (receiver, labels), members in sorted(groups.items())
        ]
        return web.json_response(body, dumps=_dumps)

    async def get_receivers(self, _request: web.Request) -> web.Response:
        _active, notifier = self._parts()
        return web.json_response([{"name": ch.name} for ch in notifier.router.channels])

    # -- silences ---------------------------------------------------------------------------

    async def get_silences(self, request: web.Request) -> web.Response:
        try:
            wanted = am_shapes.parse_filter(request.query.getall("filter", []))
        except BadMatcher as exc:
            return _bad(str(exc))
        now = time.time()
        order = {"active": 0, "pending": 1, "expired": 2}

        def key(s: Silence) -> tuple[int, float]:
            # as Alertmanager: active ones ending first, pending ones starting first, then
            # the most recently expired
            state = am_shapes.silence_state(s, now)
            return order[state], (
                s.starts if state == "pending" else -s.ends if state == "expired" else s.ends
            )

        shown = sorted(
            (s for s in self._silences().all() if am_shapes.silence_has_matchers(s, wanted)),
            key=key,
        )
        return web.json_response([am_shapes.gettable_silence(s, now) for s in shown], dumps=_dumps)

    async def post_silences(self, request: web.Request) -> web.Response:
        raw = await request.read()  # over the body limit: 413 here
        try:
            # (the listener's server leaves Content-Encoding to its handlers)
            limit = self.config.api.max_body_bytes
            raw = decode_body(raw, request.headers.get("Content-Encoding", ""), limit)
        except BodyError as exc:
            return _bad(str(exc), exc.status)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _bad(f"the body is not JSON: {exc}")
        now = time.time()
        try:
            update, silence = am_shapes.silence_from_postable(body, now)
        except ValueError as exc:
            return _bad(str(exc))
        stage = self._silences()
        if update is not None and not any(s.id == update for s in stage.all()):
            return _bad(f"silence {update} not found", 404)
        await stage.save(silence)
        log.info(
            "silence %s %s through the API until %s: %s",
            silence.id,
            "updated" if update else "added",
            am_shapes.rfc3339(silence.ends),
            " ".join(str(m) for m in silence.matchers),
        )
        return web.json_response({"silenceID": silence.id})

    def _one(self, request: web.Request) -> Silence:
        sid = request.match_info["id"]
        found = [s for s in self._silences().all() if s.id == sid]
        if not found:
            raise web.HTTPNotFound(
                text=orjson.dumps(f"silence {sid[:64]} not found").decode(),
                content_type="application/json",
            )
        return found[0]

    async def get_silence(self, request: web.Request) -> web.Response:
        return web.json_response(am_shapes.gettable_silence(self._one(request)), dumps=_dumps)

    async def delete_silence(self, request: web.Request) -> web.Response:
        silence = self._one(request)
        await self._silences().end(silence.id)
        log.info("silence %s expired through the API", silence.id)
        return web.Response(status=200)

    # -- status, health, reload -------------------------------------------------------------

    async def get_status(self, _request: web.Request) -> web.Response:
        from .. import __version__
        from ..ops.redact import redact_text

        original = ""
        if self.config.file:
            try:
                original = redact_text(Path(self.config.file).read_text())  # noqa: ASYNC240 (a small config file, read on an operator's request)
            except OSError as exc:
                original = f"# cannot read {self.config.file}: {exc.strerror}"
        kafka = self.config.kafka
        name = kafka.topics.app if kafka is not None else "streamproc"
        if self.worker is not None:
            name = f"{name}/worker-{self.worker}"
        body = {
            # workers share state through Kafka topics, not Alertmanager's gossip
            "cluster": {
                "name": name,
                "status": "ready" if kafka is not None else "disabled",
                "peers": [],
            },
            "versionInfo": {
                "version": __version__,
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": f"python{sys.version.split()[0]}",
            },
            "config": {"original": original},
            "uptime": am_shapes.rfc3339(self.started),
        }
        return web.json_response(body)

    async def healthy(self, _request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(self, _request: web.Request) -> web.Response:
        notifier = self.sources.notifier
        ready = self.sources.active_alerts is not None and notifier is not None
        return web.Response(text="OK" if ready else "starting", status=200 if ready else 503)

    async def post_reload(self, _request: web.Request) -> web.Response:
        if self.reload is None:
            return web.Response(
                status=500,
                text="failed to reload config: streamproc runs without a config file (-c FILE)\n",
            )
        try:
            result = await self.reload()
        except StreamprocError as exc:
            return web.Response(status=500, text=f"failed to reload config: {exc}\n")
        if not result.ok:
            return web.Response(status=500, text=f"failed to reload config: {result.error}\n")
        return web.Response(text="OK\n")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
