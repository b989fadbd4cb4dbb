"""pipeline_failed: CI pipeline results, one alert per red streak.

    pipeline of api@main:  ok   FAIL  FAIL  FAIL   ok
    -----------------------------^--------------^------> event time
                                 FIRE (high)    RESOLVED ("recovered", same fingerprint;
                                                the two failures between are counted)

- ``failure`` (also failed, error, errored, broken): high. The first failure of a project and
  branch fires; later failures while it is red are counted into the incident, not re-sent,
  unless ``realert`` > 0 seconds have passed since the last notification.
- ``warning`` (also unstable): medium, one alert per pipeline run.
- ``success``, ``started`` and anything else (cancelled, skipped, running): info, on by
  default, ``info_events: false`` turns them off. A success that ends a red streak sends the
  resolution instead of an info alert.
"""

from __future__ import annotations

from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import clip, column_equals, iso, sample_of
from ._windows import KeyedState
from .base import Detector, Prefilter, register

FAILURE = frozenset(
    {"failure", "failed", "fail", "error", "errored", "broken", "timed_out", "timeout"}
)
WARNING = frozenset({"warning", "unstable"})
SUCCESS = frozenset({"success", "succeeded", "successful", "passed", "pass", "fixed", "ok"})
_FIELDS = (
    "project",
    "branch",
    "status",
    "commit",
    "author",
    "duration",
    "build_url",
    "description",
)


def _is_pipeline(data: dict[str, Any]) -> bool:
    return data.get("type") == "pipeline"


@register
class PipelineFailed(Detector):
    kind = "pipeline_failed"
    family = "cicd-events"
    severity = "high"
    defaults = {"info_events": True, "realert": 0.0}
    colocate = ("project",)
    prefilter_reads_record_only = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.info_events = bool(self.params["info_events"])
        self.realert = float(self.params["realert"])
        # (project, branch) -> [incident start, failures, last notified, first sample]
        self.red: KeyedState[tuple[str, str], list[Any]] = KeyedState(self.ctx.key_cap)

    def prefilter(self) -> Prefilter:
        return _is_pipeline

    def column_prefilter(self) -> Any:
        return column_equals("type", "pipeline")

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for ev in events:
            data = ev.data
            if data.get("type") != "pipeline":
                continue
            self.evaluations += 1
            status = str(data.get("status") or "").strip().lower()
            project = str(data.get("project") or data.get("service") or "")
            branch = str(data.get("branch") or "")
            key = (project, branch)
            ts = ev.ts
            if status in FAILURE:
                st = self.red.get(key)
                if st is None:
                    st = [ts, 1, ts, sample_of(data, _FIELDS)]
                    self.red.touch(key, st)
                    alerts.append(self._failure(key, st, ev, "firing", repeat=False))
                else:
                    st[1] += 1
                    self.red.touch(key, st)
                    if self.realert > 0 and ts - st[2] >= self.realert:
                        st[2] = ts
                        alerts.append(self._failure(key, st, ev, "firing", repeat=True))
                continue
            if status in SUCCESS:
                st = self.red.pop(key)
                if st is not None:
                    alerts.append(self._failure(key, st, ev, "resolved", repeat=False))
                    continue
            if status in WARNING:
                alerts.append(self._single(key, ev, status, "medium"))
            elif self.info_events:
                alerts.append(self._single(key, ev, status or "unknown", "info"))
        return alerts

    def _where(self, key: tuple[str, str]) -> str:
        project, branch = key
        return f"{clip(project)}@{clip(branch)}" if branch else clip(project)

    def _failure(
        self, key: tuple[str, str], st: list[Any], ev: Event, status: str, repeat: bool
    ) -> Alert:
        data = ev.data
        where = self._where(key)
        if status == "firing":
            title = f"Pipeline failed: {where}"
            if repeat:
                title += f" (still failing, {st[1]} failures)"
            body = (
                f"Pipeline of {where} failed at commit {clip(data.get('commit', '?'))} by "
                f"{clip(data.get('author', '?'))}."
                + (f" {clip(data['description'])}" if data.get("description") else "")
                + (f" Build: {clip(data['build_url'])}" if data.get("build_url") else "")
            )
        else:
            title = f"Pipeline recovered: {where}"
            body = (
                f"Pipeline of {where} passed again at commit "
                f"{clip(data.get('commit', '?'))} after {st[1]} failed run(s) since "
                f"{iso(st[0])}."
            )
        return self.make_alert(
            key={"project": key[0], "branch": key[1]},
            incident=st[0],
            event_time=ev.ts,
            title=title,
            body=body,
            status=status,
            severity="high",
            evidence={
                "failures": st[1],
                "first_failure": st[3],
                "first_seen": st[0],
                "last_seen": ev.ts,
                "samples": [{"timestamp": iso(ev.ts), **sample_of(data, _FIELDS)}],
            },
            source=ev.source(),
            labels={"project": clip(key[0]), "branch": clip(key[1])},
        )

    def _single(self, key: tuple[str, str], ev: Event, status: str, severity: str) -> Alert:
        data = ev.data
        where = self._where(key)
        return self.make_alert(
            key={"project": key[0], "branch": key[1]},
            incident=[ev.ts, status, data.get("commit")],
            event_time=ev.ts,
            title=f"Pipeline {status}: {where}",
            body=(
                f"Pipeline of {where} reported {status} at commit "
                f"{clip(data.get('commit', '?'))} by {clip(data.get('author', '?'))}."
                + (f" Build: {clip(data['build_url'])}" if data.get("build_url") else "")
            ),
            severity=severity,
            evidence={"samples": [{"timestamp": iso(ev.ts), **sample_of(data, _FIELDS)}]},
            source=ev.source(),
            labels={"project": clip(key[0]), "branch": clip(key[1]), "status": status},
        )

    def state_size(self) -> int:
        return len(self.red)

    @property
    def evictions(self) -> int:
        return self.red.evictions

    def snapshot(self) -> Any:
        return {
            "red": [[k[0], k[1], st] for k, st in self.red.items()],
            "evictions": self.red.evictions,
        }

    def restore(self, state: Any) -> None:
        for project, branch, st in state.get("red", []):
            self.red.touch((project, branch), list(st))
        self.red.evictions = int(state.get("evictions", 0))
