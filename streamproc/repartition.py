"""Repartitioning: every key's state in exactly one task, whatever the topic is keyed by.

A task (one partition of one topic) only sees the records of its partition. A keyed detector
is exact there only when records with the same key always land in the same partition, i.e.
when the topic is partitioned by (a part of) the detector's key. Producers key topics as they
please (log shippers often not at all), so streamproc re-keys what it must, as Kafka Streams
does:

    auth-logs (keyed by ?) --decode--> local detectors (those the topic's key already suits)
                              \\--re-key by username--> <app>.repartition.<binding>.username
                              \\--re-key by ip_address-> <app>.repartition.<binding>.ip_address
    <app>.repartition.<binding>.<field> --> the detectors that need <field>

(``<app>``: the deployment's application id, see internal_topics.py.)

A binding says how its topic is keyed with ``keyed_by`` (the six default topics are keyed by
their contract key: auth-logs by username, api-access-logs by ip_address, ...). A detector
says which fields co-locate its state (``COLOCATE`` below, or a ``colocate`` class attribute
on a user's detector): brute_force keys on (username, ip_address), so a topic keyed by either
suits it; password_spray counts usernames per ip_address and needs ip_address. Detectors
that a binding's key does not suit run on the repartition topic of the first field they
name; detectors that share that field share the task (compromise_suspected reads
brute_force's fires).

Commit protocol: repartitioned records are produced, like alerts and dead letters, before
the source offsets are checkpointed; their own topic is consumed, checkpointed and committed
like any other. A crash between produce and checkpoint re-produces them: duplicates on the
repartition topic are dropped by the consuming task (see ``Judge``: each repartitioned
record carries its source coordinates, and a task remembers the last source offset it
judged per source partition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from .detectors import REGISTRY, load_detector_class
from .internal_topics import InternalTopics

if TYPE_CHECKING:
    from .config import Binding, Config
    from .events import Event

# Fields that co-locate each built-in detector's state: the topic must be partitioned by one
# of them for the detector to run where the records arrive. None: no keyed state.
COLOCATE: dict[str, tuple[str, ...] | None] = {
    "brute_force": ("username", "ip_address"),
    "compromise_suspected": ("username", "ip_address"),
    "password_spray": ("ip_address",),
    "distributed_brute_force": ("username",),
    "unusual_login": ("username",),
    "sql_injection": ("ip_address",),
    "rate_abuse": ("ip_address",),
    "metric_threshold": ("host",),
    "host_silent": ("host",),
    "pipeline_failed": ("project",),
    "deployment": None,
    "ticket_created": None,
    "sla_breach": ("ticket_id",),
    "ticket_resolved": ("ticket_id",),
    "revenue_target_missed": ("metric",),
    "revenue_drop": ("metric",),
    "revenue_target_exceeded": ("metric",),
    "metric_below": ("metric",),
}


def colocation(kind: str, family_key: tuple[str, ...]) -> tuple[str, ...] | None:
    if kind in COLOCATE:
        return COLOCATE[kind]
    cls = REGISTRY.get(kind) or load_detector_class(kind)
    declared = getattr(cls, "colocate", "unset")
    if declared != "unset":
        return tuple(declared) if declared else None
    return family_key or None  # conservative: state keyed by the family's key


def topic_name(config: Config, binding: Binding, field: str) -> str:
    return internal_topics(config).repartition(binding.name, field)


def internal_topics(config: Config) -> InternalTopics:
    """The config's internal topic names (those of the default application id without Kafka,
    as in replay)."""
    from .config import DEFAULT_GROUP_ID

    return config.kafka.topics if config.kafka is not None else InternalTopics(DEFAULT_GROUP_ID)


def plan(config: Config, binding: Binding) -> tuple[set[str], dict[str, set[str]]]:
    """(kinds that run where the records arrive, {field: kinds re-keyed by that field})."""
    from .detectors import build_detectors

    local: set[str] = set()
    remote: dict[str, set[str]] = {}
    for detector in build_detectors(config, binding):
        fields = colocation(detector.kind, binding.contract.key)
        if fields is None or (binding.keyed_by is not None and binding.keyed_by in fields):
            local.add(detector.kind)
        else:
            remote.setdefault(fields[0], set()).add(detector.kind)
    return local, remote


def internal_bindings(config: Config, binding: Binding) -> list[Binding]:
    """The bindings of the repartition topics a source binding feeds."""
    from dataclasses import replace

    _, remote = plan(config, binding)
    return [replace(binding, name=f"{binding.name}@{field}",
                    topic=topic_name(config, binding, field), pattern=None,
                    format="internal", mapping=None, keyed_by=field, source="kafka",
                    line=binding.line)
            for field in sorted(remote)]


def encode(event: Event) -> bytes:
    return orjson.dumps({"ts": event.ts, "data": event.data,
                         "src": [event.topic, event.partition, event.offset]},
                        default=str)


def key_of(event: Event, field: str) -> bytes | None:
    value = event.data.get(field)
    return None if value is None else str(value).encode()


def decode(value: bytes) -> tuple[float, dict[str, Any], list[Any]]:
    d = orjson.loads(value)
    return float(d["ts"]), d["data"], d["src"]
