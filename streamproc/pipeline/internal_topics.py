"""The names of a deployment's internal topics: every one starts with its application id.

As Kafka Streams prefixes its changelog and repartition topics with ``application.id``, so
that two applications on one cluster never read each other's state, every topic streamproc
creates for itself is named ``<application_id>.<what>``:

    <app>.state.<source topic>            checkpoints (storage/checkpoints.py)
    <app>.repartition.<binding>.<field>   re-keyed records (repartition.py)
    <app>.alerts, <app>.alerts.dlq        the alert log, undeliverable alerts (storage/alertlog.py)
    <app>.silences                        silences, read as a table by every worker
    <app>.notifications                   the shared notification log (notify/sharedlog.py)
    <app>.alerts.active                   active alerts, for the Alertmanager API (notify/active.py)

``kafka.application_id`` defaults to ``kafka.group_id``; with the default group id
(``streamproc``) the names are those of earlier versions. Alert topics given explicitly in the
config (``alert_topic``, ``alert_dlq_topic``) stay as given. A record's dead letters go to
``<source topic>.dlq``: they describe the source topic, not the deployment.

This module is the only place that spells these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InternalTopics:
    app: str

    @property
    def prefix(self) -> str:
        return f"{self.app}."

    def state(self, source_topic: str) -> str:
        return f"{self.app}.state.{source_topic}"

    @property
    def repartition_prefix(self) -> str:
        return f"{self.app}.repartition."

    def repartition(self, binding_name: str, field: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", binding_name)[:180]
        return f"{self.repartition_prefix}{safe}.{field}"

    def is_repartition(self, topic: str) -> bool:
        return topic.startswith(self.repartition_prefix)

    @property
    def alerts(self) -> str:
        return f"{self.app}.alerts"

    @property
    def alerts_dlq(self) -> str:
        return f"{self.app}.alerts.dlq"

    @property
    def silences(self) -> str:
        return f"{self.app}.silences"

    @property
    def active_alerts(self) -> str:
        return f"{self.app}.alerts.active"

    @property
    def notifications(self) -> str:
        return f"{self.app}.notifications"
