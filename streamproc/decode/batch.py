"""BatchDecoder: a fetched batch of one binding -> Events and DeadLetters, checked column-wise.

``RecordDecoder`` checks a record at a time: parse, shape, every field, the timestamp, each a
Python step per record. Here a batch is parsed record by record in one C-level pass, and
every later check runs over the whole batch at once, a field (column) at a time::

    values ──parse (orjson, map)──► rows ──shape──► fields ──timestamps──► Events
                │                     │         │             │
                └── any record a step cannot vouch for ───────┴──► RecordDecoder.decode
                                                                   (Event or DeadLetter)

A step either vouches for the whole batch with a few C-level passes (``set(map(type, col))``,
``None in col``, byte counts over the joined batch) or, when it cannot, names the records it
cannot vouch for. Those records, and only those, are decoded again by the binding's
RecordDecoder, which decides what they are: so an Event is the one RecordDecoder makes (same
``data``, ``ts``, coordinates, order) and a dead letter has the same reason and detail. What
the fast path takes:

- a JSON binding, with or without a field mapping (access-log and pattern bindings are
  decoded a record at a time; repartitioned records have a loop of their own);
- a record of at most ``max_record_bytes`` that parses to an object nested no deeper than
  ``max_depth``;
- no key repeated in any of its objects: with no whitespace before any colon in the batch,
  the number of ``":`` in the joined batch equals the number of keys parsed (see
  ``spaced_colons`` in records.py), counted at every level for nested records; or, for
  nested records, each is byte for byte orjson's writing of what it parsed to;
- a mapped record is mapped (``FieldMapping.apply``) as RecordDecoder maps it, and the checks
  below see the mapped record;
- every required field present and not empty; every typed field absent, null or of exactly
  its Python type, or an integer in a number field (made a float, as ``coerce_number``
  does); any other value that needs a coercion (``"200"`` for an int, ``1`` for a bool) is
  the RecordDecoder's; an enum field's value in its enum as given;
- a timestamp ``parse_timestamp`` accepts (``events.parse_timestamps``, column-wise).

Candidates measured on the bench stream (``streamproc.traffic`` "mixed", seed 7, 50,000
auth-logs records of ~220 B in batches of 5,000, collector tuned as ``runtime.tune_gc``, the
decoded rows kept alive as a judge keeps them; 2-core machine, medians of 5, ns per record)::

    RecordDecoder.decode, a record at a time (today)                  2178
    parse only, rows kept:  orjson.loads in a loop                    1009
                            list(map(orjson.loads, batch))             975
                            orjson.loads(b"[" + b",".join(batch) + b"]")   933
                            msgspec.json.Decoder().decode(joined)      895
                            list(map(msgspec Decoder.decode, batch))   983
                            polars.read_ndjson (columns, no rows)      523
                            polars.read_ndjson(...).to_dicts()        1644
                            pyarrow.json.read_json (columns, no rows)  737
                            pyarrow.json.read_json(...).to_pylist()   2319

and the decoder built on the pick, against RecordDecoder in the same run (ns per record, a
busier moment of the same machine; every stream of the mix, 5,000-record batches)::

    family             records   RecordDecoder   BatchDecoder   ratio
    api-access-logs     50,000            3447           2646   1.30x
    auth-logs           50,000            3365           2714   1.24x
    host-metrics        39,964            3058           2420   1.26x
    cicd-events          4,000            3704           3663   1.01x  (13 fields, 2 enums)
    support-tickets      3,382            3737           3638   1.03x  (11 fields, 1 enum)

Detectors take Events with a dict per record, so the dicts have to be built: the columnar
readers win only while nothing asks for rows (polars and pyarrow build them at 2-3x the cost
of parsing them), and once the dicts exist all parsers cost about the same. msgspec's typed
``Struct`` checks types in C, but drops the fields a contract does not name (every stream
here carries some: ``endpoint``, ``service``, ``region``), and a joined ``[a,b,...]`` parse
cannot tell which record a value came from when one record is hostile (``{"a":"}`` followed
by ``{"}`` parse as one object). So the parse is orjson, the parser RecordDecoder uses (the
same numbers, the same strings, the same errors), once per record in a C-level ``map``, and
the time saved is the per-record Python of the checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from typing import Any, Protocol, cast

import orjson

from ..contracts import Contract
from ..events import SOURCE_PROGRESS, Event, parse_timestamps
from .deadletter import DeadLetter
from .fields import EXACT_TYPES
from .mapping import FieldMapping
from .patterns import LineFormat
from .records import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_RECORD_BYTES,
    RecordDecoder,
    keys_within,
    spaced_colons,
)

_loads = orjson.loads
_dumps = orjson.dumps
_get = dict.get
_INF = float("inf")
_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1
_NONE = type(None)
# below this many records a batch is decoded a record at a time: the column passes cost more
# than they save
MIN_BATCH = 8


class KeysByIndex(Protocol):
    def __getitem__(self, i: int, /) -> bytes | None: ...


class BatchDecoder:
    """Decodes a batch of one binding's records; see the module docstring for what it takes
    column-wise and what it hands to ``record`` (the binding's RecordDecoder)."""

    def __init__(
        self,
        contract: Contract,
        *,
        fmt: str = "json",
        mapping: FieldMapping | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        lines: LineFormat | None = None,
    ) -> None:
        self.record = RecordDecoder(
            contract,
            fmt=fmt,
            mapping=mapping,
            max_record_bytes=max_record_bytes,
            max_depth=max_depth,
            lines=lines,
        )
        self.family = contract.family
        self.contract = contract
        self.max_record_bytes = max_record_bytes
        fields = contract.fields.values()
        self.columnar = (
            fmt == "json"
            and max_depth >= 1
            and "timestamp" in contract.required
            and all(f.enum is None or f.type == "string" for f in fields)
        )
        # (name, types taken as they are, enum or None, required) of every field but the
        # timestamp, in contract order (a required timestamp is checked by parsing it)
        self._typed = tuple(
            (
                f.name,
                frozenset((EXACT_TYPES[f.type], _NONE)),
                None if f.enum is None else frozenset(f.enum),
                f.required,
            )
            for f in fields
            if f.type != "timestamp"
        )
        # records handed to ``record`` one at a time (the column checks did not take them)
        self.one_by_one = 0
        # repartitioned records (streamproc's own envelope, see pipeline/repartition.py)
        self.internal = fmt == "internal"

    @classmethod
    def for_binding(cls, binding: Any) -> BatchDecoder:
        return cls(
            binding.contract,
            fmt=binding.format,
            mapping=binding.mapping,
            max_record_bytes=binding.max_record_bytes,
            lines=binding.lines,
        )

    def decode(
        self,
        value: bytes,
        topic: str = "",
        partition: int = 0,
        offset: int = -1,
        key: bytes | None = None,
    ) -> Event | DeadLetter:
        """One record (``RecordDecoder.decode``)."""
        return self.record.decode(value, topic, partition, offset, key)

    def decode_batch(
        self,
        values: Sequence[bytes | None],
        topic: str | Sequence[str] = "",
        partition: int | Sequence[int] = 0,
        offsets: Sequence[int] | int = 0,
        keys: KeysByIndex | None = None,
    ) -> tuple[list[Event], list[DeadLetter]]:
        """Records of one binding, in order -> (events, dead letters), each in record order.

        ``topic`` and ``partition``: the records' own, one for all or one per record (a
        binding's MQTT records come from many topics); ``offsets``: one per record, or the
        first of consecutive ones; ``keys``: the record keys by position, read only for the
        records dead-lettered (a dead letter keeps its key), or None. A None value (a Kafka
        tombstone) is an empty payload."""
        n = len(values)
        if isinstance(offsets, int):
            offsets = range(offsets, offsets + n)
        topics = repeat(topic, n) if isinstance(topic, str) else topic
        partitions = repeat(partition, n) if isinstance(partition, int) else partition
        if self.internal and n >= MIN_BATCH:
            return self._internal(values, topics, partitions, offsets, keys)
        if self.columnar and n >= MIN_BATCH:
            (rows, epochs, positions), slow = self._columnar(values)
            if not slow:
                return list(
                    map(Event, repeat(self.family, n), epochs, rows, topics, partitions, offsets)
                ), []
            fast = dict(zip(positions, zip(rows, epochs, strict=True), strict=True))
        else:
            fast = {}
        # Some records need RecordDecoder: both, merged in record order.
        self.one_by_one += n - len(fast)
        events: list[Event] = []
        dead: list[DeadLetter] = []
        family = self.family
        for i, tp_topic, tp_partition, offset in zip(
            range(n), topics, partitions, offsets, strict=True
        ):
            got = fast.get(i)
            if got is not None:
                events.append(Event(family, got[1], got[0], tp_topic, tp_partition, offset))
                continue
            self._one(values, i, tp_topic, tp_partition, offset, keys, events, dead)
        return events, dead

    # -- internals -------------------------------------------------------------------------

    def _internal(
        self,
        values: Sequence[bytes | None],
        topics: Iterable[str],
        partitions: Iterable[int],
        offsets: Sequence[int],
        keys: KeysByIndex | None,
    ) -> tuple[list[Event], list[DeadLetter]]:
        """Repartitioned records: each envelope as streamproc writes it (``{"ts": float,
        "data": {...}, "src": [topic, partition, offset]}``; a source's progress mark is
        the same without ``data``, its Event's data ``SOURCE_PROGRESS``) made its Event here,
        in one loop, with the checks and values ``RecordDecoder`` gives it; any other
        envelope is RecordDecoder's, which says what is wrong with it. (A loop a record
        rather than a C-level parse of the batch first: keeping the batch's parsed envelopes
        alive until the checks ran cost more than the calls it saved.)"""
        family = self.family
        events: list[Event] = []
        dead: list[DeadLetter] = []
        for i, value, tp_topic, tp_partition, offset in zip(
            range(len(values)), values, topics, partitions, offsets, strict=True
        ):
            try:
                doc = _loads(value)  # type: ignore[arg-type]
            except orjson.JSONDecodeError:  # (a None too: "Input must be bytes")
                doc = None
            if type(doc) is dict:
                ts, data, src = _get(doc, "ts"), _get(doc, "data"), _get(doc, "src")
                if data is None and len(doc) == 2:
                    data = SOURCE_PROGRESS  # a progress mark (repartition.encode_mark)
                if (
                    type(ts) is float
                    and 0 <= ts < _INF
                    and type(data) is dict
                    and type(src) is list
                    and len(src) == 3
                ):
                    src_topic, src_partition, src_offset = src
                    if (
                        type(src_topic) is str
                        and type(src_partition) is int
                        and type(src_offset) is int
                        and _MIN_INT64 <= src_partition <= _MAX_INT64
                        and _MIN_INT64 <= src_offset <= _MAX_INT64
                    ):
                        events.append(Event(family, ts, data, src_topic, src_partition, src_offset))
                        continue
            self.one_by_one += 1
            self._one(values, i, tp_topic, tp_partition, offset, keys, events, dead)
        return events, dead

    def _one(
        self,
        values: Sequence[bytes | None],
        i: int,
        topic: str,
        partition: int,
        offset: int,
        keys: KeysByIndex | None,
        events: list[Event],
        dead: list[DeadLetter],
    ) -> None:
        """Record ``i`` decoded by RecordDecoder, added to ``events`` or ``dead``."""
        out = self.record.decode(
            values[i] or b"", topic, partition, offset, None if keys is None else keys[i]
        )
        if type(out) is Event:
            events.append(out)
        else:
            dead.append(out)

    def _columnar(
        self, values: Sequence[bytes | None]
    ) -> tuple[tuple[list[dict[str, Any]], list[float], list[int]], bool]:
        """((rows, epochs, positions) of the records taken here, whether any was not)."""
        n = len(values)
        positions: list[int] = list(range(n))
        data = cast(Sequence[bytes], values)
        # size: RecordDecoder says too_large before it parses
        try:
            longest = max(map(len, data))
        except TypeError:  # a None (a Kafka tombstone): RecordDecoder's empty payload
            data = [b"" if v is None else v for v in values]
            longest = max(map(len, data))
        if longest > self.max_record_bytes:
            limit = self.max_record_bytes
            positions = [i for i in positions if len(data[i]) <= limit]
        vals = data if len(positions) == n else [data[i] for i in positions]
        # parse: one C-level pass. A record that fails it stops the pass there (the rows
        # before it are kept): the pass resumes after it, so no record is parsed twice here.
        rows: list[Any] = []
        failed: list[int] = []
        while True:
            try:
                rows.extend(map(_loads, vals[len(rows) + len(failed) :]))
                break
            except orjson.JSONDecodeError:
                failed.append(len(rows) + len(failed))
        if failed:
            bad = set(failed)
            keep = [j for j in range(len(vals)) if j not in bad]
            vals, positions = [vals[j] for j in keep], [positions[j] for j in keep]
        # shape: objects only, every value a scalar, no key repeated. Every '"' of a flat
        # object opens or closes a key or a string value, or is escaped (\"): when the batch
        # holds exactly two per key and string value parsed, no key was repeated (a repeat
        # parses into one key) and none is escaped. Otherwise RecordDecoder's own rule, per
        # record, says which records it would check in full.
        if set(map(type, rows)) != {dict}:
            keep = [j for j, row in enumerate(rows) if type(row) is dict]
            rows, vals, positions = _take(keep, rows, vals, positions)
        value_types = list(map(type, chain.from_iterable(map(dict.values, rows))))
        if dict in value_types or list in value_types:
            # nested values: within max_depth, no key repeated at any level. A record that
            # is orjson's own writing of what it parsed to repeats no key (the writing of a
            # dict names each key once): compact JSON, keys in the order given, strings
            # escaped only where JSON must. Its depth is then bounded by its brackets.
            # Checked so, a 650-byte nested ECS auth record costs ~3.3 us (orjson's
            # writing 1.8, the brackets 1.5), ~10 us by counting keys below.
            limit = self.record.max_depth
            if not (
                _written_by_orjson(rows, vals)
                and max(map(bytes.count, vals, repeat(b"{")))
                + max(map(bytes.count, vals, repeat(b"[")))
                <= limit
            ):
                # With no whitespace before a colon, a record's count of '":' is at least
                # the keys it holds (every key ends so) and at least the keys parsed; the
                # batch's count equals the keys parsed at every level only when no record
                # repeats one (a record too deep counts -1 keys: the sums differ).
                keys = [keys_within(row, limit) for row in rows]
                joined = b"".join(vals)
                if joined.count(b'":') != sum(keys) or spaced_colons(joined):
                    rows, vals, positions = self._shaped(keys, rows, vals, positions)
        elif b"".join(vals).count(b'"') != 2 * (sum(map(len, rows)) + value_types.count(str)):
            rows, vals, positions = self._shaped(list(map(len, rows)), rows, vals, positions)
        mapping = self.record.mapping
        if mapping is not None:
            # RecordDecoder maps the record it parsed, then checks the mapped one
            rows = list(map(mapping.apply, rows))
        # fields: required ones present, typed ones of their exact type, enums as given
        unfit: set[int] = set()
        for name, allowed, enum, required in self._typed:
            col = list(map(_get, rows, repeat(name)))
            kinds = set(map(type, col))
            if required and (_NONE in kinds or (str in kinds and "" in col)):
                unfit.update(j for j, v in enumerate(col) if v is None or v == "")
            if int in kinds and float in allowed:
                # an integer in a number field: RecordDecoder's coerce_number writes float(v)
                # (any integer orjson parses is in float's range)
                kinds.discard(int)
                for row, value in zip(rows, col, strict=True):
                    if type(value) is int:
                        row[name] = float(value)
            if not allowed.issuperset(kinds):
                unfit.update(j for j, v in enumerate(col) if type(v) not in allowed)
            if enum is not None:
                # also when another record's value was of the wrong type (unfit above, as is
                # a list or an object, which no set holds)
                try:
                    seen = set(col)
                except TypeError:
                    seen = {v for v in col if type(v) is str}
                seen.discard(None)
                if not enum.issuperset(seen):
                    unfit.update(j for j, v in enumerate(col) if type(v) is str and v not in enum)
        if unfit:
            keep = [j for j in range(len(rows)) if j not in unfit]
            rows, vals, positions = _take(keep, rows, vals, positions)
        # timestamps: the column at once; a value parse_timestamp rejects is RecordDecoder's
        epochs, unparsed = parse_timestamps(list(map(_get, rows, repeat("timestamp"))))
        if unparsed:
            bad = set(unparsed)
            keep = [j for j in range(len(rows)) if j not in bad]
            rows, _, positions = _take(keep, rows, vals, positions)
            epochs = [epochs[j] for j in keep]
        return (rows, epochs, positions), len(positions) != n

    @staticmethod
    def _shaped(
        keys: list[int], rows: list[dict[str, Any]], vals: Sequence[bytes], positions: list[int]
    ) -> tuple[list[dict[str, Any]], list[bytes], list[int]]:
        """The records RecordDecoder's parse takes as parsed, by its own rule a record at a
        time (``keys``: each record's keys at every level, -1 where it is too deep): the
        count of '":' says that no key is repeated. A record whose count does not tell (a
        '":' inside a string, a space before a colon) is RecordDecoder's, which checks it
        in full."""
        keep = [
            j
            for j, (n, v) in enumerate(zip(keys, vals, strict=True))
            if n >= 0 and v.count(b'":') == n and not spaced_colons(v)
        ]
        return _take(keep, rows, vals, positions)


def _written_by_orjson(rows: list[Any], vals: Sequence[bytes]) -> bool:
    """Whether each value is byte for byte ``orjson.dumps`` of the row parsed from it."""
    try:
        return list(map(_dumps, rows)) == list(vals)
    except TypeError:  # (orjson.JSONEncodeError) nothing orjson parsed should fail here
        return False


def _take(
    keep: list[int], rows: list[dict[str, Any]], vals: Sequence[bytes], positions: list[int]
) -> tuple[list[dict[str, Any]], list[bytes], list[int]]:
    return [rows[j] for j in keep], [vals[j] for j in keep], [positions[j] for j in keep]
