"""deployment: every deployment, as an info alert; production ones are high-visibility.

Routing hint in the labels (notify/ routes on labels):

- ``environment`` in ``production_environments`` (default production, prod, prd, live):
  ``labels["visibility"] = "all"`` (every route: the whole team should know);
- anything else: ``labels["visibility"] = "dev"`` (the development route).

A deployment record that carries a failing ``status`` (failure, failed, error, rolled_back)
is a failed deployment: severity high, whatever the environment.
"""

from __future__ import annotations

from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import clip, column_equals, iso, parse_list, sample_of
from .base import Detector, Prefilter, register

_FIELDS = (
    "service",
    "version",
    "environment",
    "deployer",
    "release_notes",
    "status",
    "commit",
    "project",
)
_FAILED = frozenset({"failure", "failed", "error", "errored", "rolled_back", "rollback"})


def _is_deployment(data: dict[str, Any]) -> bool:
    return data.get("type") == "deployment"


@register
class Deployment(Detector):
    kind = "deployment"
    family = "cicd-events"
    severity = "info"
    defaults = {
        "production_environments": "production,prod,prd,live",
        "production_severity": "info",
    }
    colocate = None  # stateless
    prefilter_reads_record_only = True

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.production = frozenset(parse_list(str(self.params["production_environments"])))
        from ..alerts import SEVERITIES
        from ..errors import ConfigError

        self.production_severity = str(self.params["production_severity"])
        if self.production_severity not in SEVERITIES:
            raise ConfigError(
                f"deployment production_severity must be one of {', '.join(SEVERITIES)}"
            )

    def prefilter(self) -> Prefilter:
        return _is_deployment

    def column_prefilter(self) -> Any:
        return column_equals("type", "deployment")

    def process(self, events: list[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for ev in events:
            data = ev.data
            if data.get("type") != "deployment":
                continue
            self.evaluations += 1
            service = str(data.get("service") or data.get("project") or "")
            env = str(data.get("environment") or "")
            version = str(data.get("version") or "")
            production = env.strip().lower() in self.production
            failed = str(data.get("status") or "").strip().lower() in _FAILED
            severity = "high" if failed else (self.production_severity if production else "info")
            what = "failed" if failed else "deployed"
            deployer = data.get("deployer")
            title = f"{clip(service)} {clip(version)} {what} to {clip(env) or 'unknown'}".replace(
                "  ", " "
            )
            body = (
                f"{clip(service)} version {clip(version) or '?'} {what} to "
                f"{clip(env) or 'an unnamed environment'}"
                + (f" by {clip(deployer)}" if deployer else "")
                + "."
                + (f"\n{clip(data['release_notes'])}" if data.get("release_notes") else "")
            )
            alerts.append(
                self.make_alert(
                    key={"service": service, "environment": env},
                    incident=[ev.ts, version],
                    event_time=ev.ts,
                    title=title,
                    body=body,
                    severity=severity,
                    evidence={"samples": [{"timestamp": iso(ev.ts), **sample_of(data, _FIELDS)}]},
                    source=ev.source(),
                    labels={
                        "service": clip(service),
                        "environment": clip(env),
                        "visibility": "all" if production else "dev",
                        "production": "true" if production else "false",
                    },
                )
            )
        return alerts
