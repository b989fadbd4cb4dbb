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
declares which fields co-locate its state (``colocate`` on its class, next to its code):
brute_force keys on (username, ip_address), so a topic keyed by either suits it;
password_spray counts usernames per ip_address and needs ip_address; ``None`` (deployment)
suits any key. A detector that declares nothing (a user's, written before it could) is
taken to key its state by its family's contract key, and check-config names it. Detectors
that a binding's key does not suit run on the repartition topic of the first field they
name; detectors that share that field share the task (compromise_suspected reads
brute_force's fires).

What is shipped. A re-keyed detector that says which records can matter to it from the record
alone (``Detector.prefilter_reads_record_only``: password_spray, failures only) is sent only
those, as Kafka Streams users filter before ``selectKey``: on auth records with 2% failures,
a fiftieth of the copies (and of the repartition topic's bytes). Where any detector of a
repartition topic cannot say, every record is shipped. A repartitioned task then judges event
time on the copies it receives; the merge that puts them back in event-time order
(detectors/merge.py) must still hear how far each source has got, or a source with nothing to
ship would hold the others back. So after each batch it ships from, a source partition writes
a progress mark to *every* partition of the topic (``encode_mark``: its last offset and its
stream time as its task judged it, which a forged time does not move; no data;
``batches.EVERY_PARTITION``), after the batch's copies, so that a reader has every copy up to
a mark once it reads the mark::

    auth-logs/0  f(10:00) s s s s s f(10:03) s s s(10:05) | batch
    ...ip_address/k  copy f(10:00)  copy f(10:03)  mark(auth-logs/0, 10:05, offset)  (each k)

Commit protocol: repartitioned records are produced, like alerts and dead letters, before
the source offsets are checkpointed; their own topic is consumed, checkpointed and committed
like any other. A crash between produce and checkpoint re-produces them: duplicates on the
repartition topic are dropped by the consuming task (see ``Judge``: each repartitioned
record carries its source coordinates, and a task remembers the last source offset it
judged per source partition).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ..config import Binding, Config
    from ..detectors import Detector
    from ..events import Event


def colocation(
    cls: type[Detector], family_key: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, bool]:
    """(the fields that co-locate the detector's state or None for any, whether that was
    assumed): what it declares as ``colocate``; a detector that declares nothing is taken to
    key its state by the family's contract key (``assumed``: check-config says so)."""
    declared = cls.colocate
    if declared is None:
        return None, False
    if isinstance(declared, str):  # one field, written without the tuple
        return (declared,), False
    if isinstance(declared, tuple | list):
        return (tuple(declared) or None), False
    return (family_key or None), True


def internal_name(binding: str, field: str) -> str:
    """The name of the binding that reads ``binding``'s records re-keyed by ``field``."""
    return f"{binding}@{field}"


def ship_filter(
    config: Config, internal: Binding, kinds: set[str] | None
) -> tuple[Callable[[dict[str, Any]], bool], list[Any]] | None:
    """What the detectors on a repartition topic (``internal``, running ``kinds``) can use,
    where each says so from the record alone (``Detector.prefilter_reads_record_only``): a
    record predicate (any of theirs) and their column expressions, one a detector; None when
    one cannot say, and every record is shipped. Asked of fresh detectors: a filter that
    reads nothing but the record needs none of a task's state."""
    from ..detectors import build_detectors

    detectors = [d for d in build_detectors(config, internal) if kinds is None or d.kind in kinds]
    if not detectors or not all(type(d).prefilter_reads_record_only for d in detectors):
        return None
    predicates = [p for p in (d.prefilter() for d in detectors) if p is not None]
    columns = [c for c in (d.ship_column_prefilter() for d in detectors) if c is not None]
    if len(predicates) < len(detectors) or len(columns) < len(detectors):
        return None
    if len(predicates) == 1:  # (the usual case: no call of any() a record)
        return predicates[0], columns
    return (lambda data: any(p(data) for p in predicates)), columns


def topic_name(config: Config, binding: Binding, field: str) -> str:
    return config.internal_topics.repartition(binding.name, field)


def plan(config: Config, binding: Binding) -> tuple[set[str], dict[str, set[str]]]:
    """(kinds that run where the records arrive, {field: kinds re-keyed by that field})."""
    from ..detectors import build_detectors

    local: set[str] = set()
    remote: dict[str, set[str]] = {}
    for detector in build_detectors(config, binding):
        fields, _ = colocation(type(detector), binding.contract.key)
        if fields is None or (binding.keyed_by is not None and binding.keyed_by in fields):
            local.add(detector.kind)
        else:
            remote.setdefault(fields[0], set()).add(detector.kind)
    return local, remote


def assumed_colocation(config: Config, binding: Binding) -> dict[str, tuple[str, ...] | None]:
    """The binding's detectors that declare no ``colocate``, with what was assumed for them."""
    from ..detectors import build_detectors

    out: dict[str, tuple[str, ...] | None] = {}
    for detector in build_detectors(config, binding):
        fields, assumed = colocation(type(detector), binding.contract.key)
        if assumed:
            out[detector.kind] = fields
    return out


def internal_bindings(config: Config, binding: Binding) -> list[Binding]:
    """The bindings of the repartition topics a source binding feeds."""
    from dataclasses import replace

    _, remote = plan(config, binding)
    return [
        replace(
            binding,
            name=internal_name(binding.name, field),
            topic=topic_name(config, binding, field),
            pattern=None,
            format="internal",
            mapping=None,
            keyed_by=field,
            source="kafka",
            line=binding.line,
        )
        for field in sorted(remote)
    ]


def rekeyed(internal: Binding) -> tuple[str, str]:
    """(field, topic) of a binding ``internal_bindings`` made: what it is re-keyed by and the
    repartition topic it reads."""
    if internal.keyed_by is None or internal.topic is None:
        raise ValueError(f"binding {internal.name} is not a repartition binding")
    return internal.keyed_by, internal.topic


def encode(event: Event) -> bytes:
    return orjson.dumps(
        {"ts": event.ts, "data": event.data, "src": [event.topic, event.partition, event.offset]},
        default=str,
    )


def encode_raw(ts: float, record: bytes, topic: str, partition: int, offset: int) -> bytes:
    """``encode``'s envelope written around a JSON record as it came: it decodes to the
    same Event wherever the record, parsed, is that Event's ``data``."""
    return b'{"ts":%b,"data":%b,"src":%b}' % (
        repr(ts).encode(),
        record,
        orjson.dumps((topic, partition, offset)),
    )


def encode_mark(ts: float, topic: str, partition: int, offset: int) -> bytes:
    """A source partition's progress mark: it has shipped every copy of its records up to
    ``offset``, the newest of them at ``ts`` (decoded: an Event whose data is
    ``events.SOURCE_PROGRESS``)."""
    # (float(): a numpy float's repr is no JSON number)
    return b'{"ts":%b,"src":%b}' % (
        repr(float(ts)).encode(),
        orjson.dumps((topic, partition, offset)),
    )


def key_of(event: Event, field: str) -> bytes | None:
    value = event.data.get(field)
    return None if value is None else str(value).encode()


def decode(value: bytes) -> tuple[float, dict[str, Any], list[Any]]:
    """(ts, data, src) of a copy; a progress mark's data is ``events.SOURCE_PROGRESS``."""
    from ..events import SOURCE_PROGRESS

    d = orjson.loads(value)
    return float(d["ts"]), d.get("data", SOURCE_PROGRESS), d["src"]
