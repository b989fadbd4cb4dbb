"""Config reload (SIGHUP, or a file watch) without losing window state or dropping events.

Order of operations on ``Reloader.reload()``:

1. Read and validate the whole new file (``load_config``: detectors are instantiated once, so
   a bad threshold fails here). Any error: log ``file:line: ...``, count
   ``streamproc_config_reloads_total{outcome="rejected"}``, keep the old config running.
   Nothing has been touched yet.
2. Plan: compare old and new. Changes that need new connections or subscriptions (brokers,
   bindings added or removed, a binding's topic, pattern or source) cannot be applied live:
   they are reported as "needs restart" and the rest is still applied.
3. Apply, synchronously, in one step of the event loop. ``Judge.judge()`` is synchronous, so a
   batch is judged either wholly before or wholly after the swap: no event is dropped or seen
   twice. Per binding: the decoder is rebuilt (mapping, format, size limit; decoders hold no
   state); every engine gets the new allowed lateness; a detector whose parameters changed is
   rebuilt with the new parameters and given the old one's state (``snapshot()`` ->
   ``restore()``, the same path checkpoints take); a newly enabled detector starts empty; a
   disabled one is dropped. The engine then tells every detector its peers again
   (``Detector.connect``), so compromise_suspected reads the rebuilt brute_force, and the
   ticket detectors the rebuilt sla_breach's table.
4. Notify (routes, templates, silences, timers): handed to ``notifier.reload(notify_cfg)`` when
   the notifier has one; if that raises ConfigError the detector changes stay applied (they
   were valid) and the reload is reported as partial.

A crash at any step leaves the old config running (1-2) or the new one applied in memory only
(3-4); the file on disk is the truth for the next start either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Binding, Config, load_config
from ..errors import ConfigError
from ..ops.redact import redact_text, register_config_secrets

if TYPE_CHECKING:
    from .runtime import Judge

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReloadResult:
    ok: bool  # the new config was valid and is now running (perhaps partly: see below)
    error: str | None = None  # why it was rejected ("file:line: ..."), secrets masked
    applied: list[str] = field(default_factory=list)  # what changed live
    needs_restart: list[str] = field(default_factory=list)  # what only a restart applies


def _binding_identity(b: Binding) -> tuple[Any, ...]:
    """What a binding subscribes to: changing it needs new subscriptions."""
    return (b.family, b.source, b.topic, b.pattern, b.mqtt_topic)


def _broker_settings(config: Config) -> tuple[Any, ...]:
    def fields(obj: Any) -> Any:
        if obj is None:
            return None
        return tuple((name, repr(getattr(obj, name))) for name in obj.__slots__)

    return (fields(config.kafka), fields(config.mqtt), str(config.state_dir))


def plan(old: Config, new: Config) -> list[str]:
    """The changes from ``old`` to ``new`` that only a restart can apply."""
    out: list[str] = []
    if _broker_settings(old) != _broker_settings(new):
        out.append("broker settings (kafka:, mqtt:, state_dir)")
    if old.api != new.api:  # the listener and the active-alerts topic are set up at start
        out.append("api: settings (token, TLS, max_body_bytes, resolve_timeout)")
    if old.ingest != new.ingest:  # the HTTP ingest endpoints are set up at start
        out.append("ingest: settings (rate limit, webhooks)")
    old_b = {b.name: b for b in old.bindings}
    new_b = {b.name: b for b in new.bindings}
    for name in sorted(set(new_b) - set(old_b)):
        out.append(f"new topic binding {name!r}")
    for name in sorted(set(old_b) - set(new_b)):
        out.append(f"removed topic binding {name!r}")
    for name in sorted(set(old_b) & set(new_b)):
        if _binding_identity(old_b[name]) != _binding_identity(new_b[name]):
            out.append(f"topic binding {name!r} now subscribes to something else")
    return out


def apply_to_judge(judge: Judge, new: Config, needs_restart: list[str] | None = None) -> list[str]:
    """Swap decoders, lateness and detector parameters of every binding present in both
    configs, keeping detector state. Returns what changed; appends to ``needs_restart`` what
    it could not apply. Synchronous on purpose.

    With repartitioning, a task runs only the detectors planned for it at start
    (``judge.kinds``): a source topic's task those its key suits, a repartition topic's task
    those re-keyed by its field; each gets its own detectors' new parameters. A change that
    moves detectors between tasks needs new subscriptions: reported, not applied."""
    from ..detectors import build_detectors

    applied: list[str] = []
    old: Config = judge.config
    new_by_name = {b.name: b for b in new.bindings}
    planned: dict[str, set[str]] = getattr(judge, "kinds", {})
    if planned:
        from .repartition import internal_bindings, rekeyed
        from .repartition import plan as rekey_plan

        wanted: dict[str, set[str]] = {}
        for b in new.bindings:
            if b.source != "kafka":
                continue
            local, remote = rekey_plan(new, b)
            if remote:
                wanted[b.name] = local
            for internal in internal_bindings(new, b):
                new_by_name.setdefault(internal.name, internal)
                wanted[internal.name] = remote[rekeyed(internal)[0]]
        for name in sorted(set(planned) | set(wanted)):
            if (
                name in judge.bindings
                and planned.get(name) != wanted.get(name)
                and needs_restart is not None
            ):
                needs_restart.append(
                    f"detectors of {name!r} re-keyed differently "
                    f"({', '.join(sorted(planned.get(name, ()))) or 'none'}"
                    f" -> {', '.join(sorted(wanted.get(name, ()))) or 'none'})"
                )
    for name, old_binding in list(judge.bindings.items()):
        binding = new_by_name.get(name)
        if binding is None or _binding_identity(binding) != _binding_identity(old_binding):
            continue  # needs a restart; keep running the old one
        judge.rebind(binding)
        if binding.allowed_lateness != old_binding.allowed_lateness:
            applied.append(
                f"{name}: allowed_lateness {old_binding.allowed_lateness:g}s -> "
                f"{binding.allowed_lateness:g}s"
            )
        kinds = planned.get(name)
        fresh = {
            d.kind: d for d in build_detectors(new, binding) if kinds is None or d.kind in kinds
        }
        changed: set[str] = set()
        for engine in judge.engines_of(name):
            engine.allowed_lateness = binding.allowed_lateness
            engine.max_future_skew = binding.max_future_skew
            engine.max_time_jump = binding.max_time_jump
            engine.jump_confirmations = binding.jump_confirmations
            current = {d.kind: d for d in engine.detectors}
            detectors = []
            for kind, template in fresh.items():
                old_detector = current.get(kind)
                if (
                    old_detector is not None
                    and old_detector.params == template.params
                    and old_detector.ctx.key_cap == template.ctx.key_cap
                ):
                    detectors.append(old_detector)  # unchanged: keep the very object
                    continue
                # A new instance per task (detectors hold per-task state).
                replacement = type(template)(dict(template.params), template.ctx)
                if old_detector is not None:
                    replacement.restore(old_detector.snapshot())
                detectors.append(replacement)
                changed.add(kind)
            removed = set(current) - set(fresh)
            changed |= removed
            # rewires every detector to its peers: one that reads a rebuilt one reads the new
            engine.set_detectors(detectors)
        for kind in sorted(changed):
            before = old.detector_params(old_binding, kind)
            after = new.detector_params(binding, kind)
            applied.append(f"{name}: {kind} {before or 'defaults'} -> {after or 'defaults'}")
    # Engines not built yet (no record seen) are built lazily from the judge's config: the
    # new one.
    judge.use_config(new)
    return applied


class Reloader:
    """Re-reads the config file on demand (SIGHUP, ``watch()``) and applies it live.

    ``judge``: the runtime's Judge (``runtime.judge``); ``notifier``: anything with an optional
    ``reload(notify_cfg: dict) -> None``; ``on_config``: called with the new Config once it is
    applied (the runtime stores it); ``metrics``: a ``streamproc.ops.metrics.Metrics``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        judge: Any,
        notifier: Any = None,
        metrics: Any = None,
        on_config: Callable[[Config], None] | None = None,
    ) -> None:
        self.path = path
        self.judge = judge
        self.notifier = notifier
        self.metrics = metrics
        self.on_config = on_config
        self._lock = asyncio.Lock()
        self.last: ReloadResult | None = None

    @classmethod
    def for_runtime(cls, runtime: Any, path: str | os.PathLike[str] | None) -> Reloader:
        def store(config: Config) -> None:
            runtime.config = config

        return cls(
            path,
            judge=runtime.judge,
            notifier=getattr(runtime, "notifier", None),
            metrics=getattr(runtime, "metrics", None),
            on_config=store,
        )

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.config_reloads.labels(outcome).inc()
            if outcome == "ok":
                self.metrics.config_last_reload_success.set_to_current_time()

    async def reload(self) -> ReloadResult:
        async with self._lock:  # two SIGHUPs in a row: one reload after the other
            result = self._reload()
            self.last = result
            return result

    def _reload(self) -> ReloadResult:
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            message = redact_text(str(exc))
            log.error("config reload rejected, the running config stays: %s", message)
            self._count("rejected")
            return ReloadResult(ok=False, error=message)
        register_config_secrets(new)
        old: Config = self.judge.config
        result = ReloadResult(ok=True, needs_restart=plan(old, new))
        result.applied = apply_to_judge(self.judge, new, result.needs_restart)
        if self.on_config is not None:
            self.on_config(new)
        if new.notify != old.notify:
            reload_notify = getattr(self.notifier, "reload", None)
            if reload_notify is None:
                result.needs_restart.append("notify settings (this notifier has no reload)")
            else:
                try:
                    reload_notify(new.notify)
                    result.applied.append("notify: routes, templates and timers")
                except ConfigError as exc:
                    message = redact_text(str(exc))
                    result.needs_restart.append(f"notify settings rejected: {message}")
                    log.error("notify part of the reload rejected, old routes stay: %s", message)
        self._count("ok")
        log.info(
            "config reloaded from %s: %s",
            self.path or "(defaults)",
            "; ".join(result.applied) or "no live changes",
        )
        for item in result.needs_restart:
            log.warning("config change needs a restart to take effect: %s", item)
        return result

    def install_sighup(self, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Reload on SIGHUP. False where signals cannot be handled (Windows, not the main
        thread)."""
        loop = loop or asyncio.get_running_loop()
        tasks: set[asyncio.Task[ReloadResult]] = set()

        def on_hup() -> None:
            log.info("SIGHUP received: reloading %s", self.path)
            task = loop.create_task(self.reload(), name="config-reload")
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        try:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        except (NotImplementedError, RuntimeError, AttributeError, ValueError):
            return False
        return True

    async def watch(self, interval: float = 2.0) -> None:
        """Reload whenever the file's modification time or size changes (run as a task)."""
        path = self.path
        if path is None:
            return

        def stamp() -> tuple[float, int] | None:
            try:
                st = os.stat(path)
            except OSError:
                return None
            return (st.st_mtime, st.st_size)

        last = stamp()
        while True:
            await asyncio.sleep(interval)
            now = stamp()
            if now is not None and now != last:
                last = now
                # Editors write in several steps: let the file settle first.
                await asyncio.sleep(min(0.5, interval))
                last = stamp() or last
                with contextlib.suppress(Exception):
                    await self.reload()
