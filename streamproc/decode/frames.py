"""FrameReader: a batch of one JSON binding -> typed columns in native code, or nothing.

The per-record decoders (records.py, batch.py) build a dict and an Event for every record,
because detectors read Events. A detector that says, as a column expression, which records
can matter to it (``Detector.column_prefilter``) needs neither for the others: the engine
judges event time from a column, the detector's expression picks its candidates from the
columns, and only the candidates are decoded into Events, by the binding's RecordDecoder.
This module makes those columns::

    values ─ b"\\n".join ─► pyarrow.json (contract fields typed) ─► checks ─► arrow table
                                   │                                    │     + ts (epoch s)
                                   └─ any doubt ────────────────────────┴─► None: the caller
                                                   decodes the batch the per-record way,
                                                   exactly as without this module

A frame is only made when every record of the batch is one the per-record decoder accepts
without a coercion, so that judging from the frame and judging Events cannot differ.
pyarrow's reader is strict where it matters, and refuses the batch (a parse error) for:

- anything not JSON, or not one object a line; a key repeated in a record (orjson keeps the
  last value, our decoder dead-letters it); a value whose JSON type is not its contract
  field's (a number for a string, ``"true"`` for a bool, ``3.0`` for an int: the per-record
  decoder would coerce or refuse it); a value of an extra field whose type changes from one
  record to the next.

and the checks here refuse it for what the reader takes but the decoder does not, or takes
differently:

- as many rows as records (the reader skips an empty line; two objects on a line are two);
  no record over ``max_record_bytes``; valid UTF-8 without a byte order mark;
- every value a scalar (no struct or list column: nested values need the depth guard);
  floats finite and below 2**63 (the reader takes NaN, and reads an integer beyond 64 bits
  as a float, where orjson refuses both);
- every required field present and not empty; every enum value in its enum as given;
- the timestamp written ``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.fffZ`` with one
  number of fraction digits (1 to 9) in the batch (what nearly every producer writes), a
  real time (it reads back as written) from 1970 on. Other forms are correct, just not
  read here.

The detectors' column prefilters read the table with pyarrow.compute (a boolean array per
batch); the engine judges event time from ``ts`` with numpy. Measured with callgrind on the
bench's auth stream (instructions a record, batches of 5,000): reading and checking 13,709
(pyarrow's parser 12,477 of it), ``orjson.loads`` alone 6,660, the per-record decode into
Events (BatchDecoder) 24,414. The reader costs ~0.5 ms a call before its first record, so a
batch of fewer than ``runtime.MIN_FRAME`` records is judged per event.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..contracts import Contract

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# YYYY-MM-DDTHH:MM:SS (then "Z" or ".fffZ"): where its separators are, what they are, and
# where its digits are
_SEPARATOR_AT = [4, 7, 10, 13, 16]
_SEPARATORS = [ord(c) for c in "--T::"]
_DIGIT_AT = [i for i in range(19) if i not in _SEPARATOR_AT]
_MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


class RecordFrame:
    """The columns of a batch every record of which was vouched for (see the module)."""

    __slots__ = ("exact", "table", "ts")

    def __init__(self, table: pa.Table, ts: np.ndarray[Any, Any], exact: frozenset[str]) -> None:
        self.table = table  # a column per field (every contract field), record order
        self.ts = ts  # event time of each record, epoch seconds (float64)
        self.exact = exact  # the fields whose values are exactly the decoder's (the contract's)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def where(self, select: Callable[[pa.Table], Any]) -> list[int]:
        """Positions of the records ``select`` (a column prefilter: the table -> a boolean
        array; null is not selected) picks."""
        import pyarrow.compute as pc

        mask = pc.fill_null(select(self.table), False)
        return pc.indices_nonzero(mask).to_numpy().tolist()  # type: ignore[no-any-return]


class FrameReader:
    """Reads a batch of one JSON binding (no field mapping) into a RecordFrame."""

    def __init__(self, contract: Contract, max_record_bytes: int) -> None:
        self.contract = contract
        self.max_record_bytes = max_record_bytes
        # (name, required, enum, a string?) of the fields checked after reading, the
        # timestamp aside
        self._checked = [
            (f.name, f.name in contract.required, f.enum, f.type == "string")
            for f in contract.fields.values()
            if f.name != "timestamp"
        ]
        self._schema_types = {f.name: f.type for f in contract.fields.values()}
        self._exact = frozenset(self._schema_types)
        self._read_options: Any = None
        self._enums: dict[str, Any] = {}
        self._parse_options: Any = None
        ts_spec = contract.fields.get("timestamp")
        # as BatchDecoder's column checks: an enum on a field that is not a string is
        # checked after a coercion, which a frame does not do
        self.usable = (
            ts_spec is not None
            and ts_spec.type == "timestamp"
            and "timestamp" in contract.required
            and all(f.enum is None or f.type == "string" for f in contract.fields.values())
        )
        # batches not taken, for tests and the bench (why is logged nowhere: it is normal)
        self.declined = 0

    def read(self, values: Sequence[bytes | None]) -> RecordFrame | None:
        if self._parse_options is None:
            self._prepare()
        frame = self._read(values)
        if frame is None:
            self.declined += 1
        return frame

    def _prepare(self) -> None:
        import pyarrow as pa
        import pyarrow.json as pj

        _one_thread_and_malloc()
        arrow = {
            "string": pa.string(),
            "bool": pa.bool_(),
            "int": pa.int64(),
            "number": pa.float64(),
            "timestamp": pa.string(),
        }
        schema = pa.schema([(name, arrow[kind]) for name, kind in self._schema_types.items()])
        # every contract field a column of its type (absent from every record: all null, as
        # ``data.get`` reads it); other fields as the reader infers them
        self._enums = {
            name: pa.array(sorted(enum), pa.string())
            for name, _, enum, _ in self._checked
            if enum is not None
        }
        self._parse_options = pj.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="infer"
        )
        # one block for the whole batch: a record never straddles two blocks' inferences
        self._read_options = pj.ReadOptions(use_threads=False, block_size=1 << 30)

    def _read(self, values: Sequence[bytes | None]) -> RecordFrame | None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.json as pj

        n = len(values)
        if not self.usable or n == 0:
            return None
        try:
            if max(map(len, values)) > self.max_record_bytes:  # type: ignore[arg-type]
                return None
        except TypeError:  # a None (tombstone): an empty payload, a dead letter
            return None
        joined = b"\n".join(values)  # type: ignore[arg-type]
        if not joined.isascii():
            try:
                joined.decode("utf-8")
            except UnicodeDecodeError:
                return None
            if b"\xef\xbb\xbf" in joined:  # a byte order mark: the reader skips it, orjson not
                return None
        try:
            table = pj.read_json(
                pa.BufferReader(joined),
                read_options=self._read_options,
                parse_options=self._parse_options,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != n:
            return None
        for column in table.itercolumns():
            kind = column.type
            if pa.types.is_floating(kind):
                if column.null_count < n and not (
                    pc.all(pc.is_finite(column)).as_py()
                    and pc.max(pc.abs(column)).as_py() < 2.0**63
                ):
                    return None
            elif not (
                pa.types.is_string(kind)
                or pa.types.is_boolean(kind)
                or pa.types.is_int64(kind)
                or pa.types.is_null(kind)
                or pa.types.is_timestamp(kind)
            ):
                return None
        for name, required, enum, text in self._checked:
            column = table.column(name)
            if required and (column.null_count or (text and pc.any(pc.equal(column, "")).as_py())):
                return None
            if (
                enum is not None
                and column.null_count < n
                and not pc.all(pc.is_in(column, value_set=self._enums[name])).as_py()
            ):
                return None
        ts = self._times(table.column("timestamp"))
        if ts is None:
            return None
        return RecordFrame(table, ts, self._exact)

    def _times(self, stamps: pa.ChunkedArray) -> Any:
        """Epoch seconds of ``YYYY-MM-DDTHH:MM:SSZ`` strings, or of ``...:SS.fffZ`` ones with
        the same number (1 to 9) of fraction digits in every row, exactly as
        ``parse_timestamp`` gives them, or None if one is written otherwise or names no real
        time from 1970 on. The strings are all one width, so the characters are a byte
        matrix, read column-wise (the calendar arithmetic is days_from_civil, H. Hinnant).
        Exact: the whole seconds are whole numbers, and a fraction ``digits / 10**k`` is the
        correctly rounded quotient of two exact doubles, the very float ``float(".ddd")``
        gives; parse_timestamp adds it to the whole seconds as is done here."""
        import numpy as np
        import pyarrow.compute as pc

        if stamps.null_count:
            return None
        lengths = pc.binary_length(stamps)
        width = pc.min(lengths).as_py()
        if (
            width is None
            or pc.max(lengths).as_py() != width
            or not (width == 20 or 22 <= width <= 29)
        ):
            return None
        chars = stamps.combine_chunks()
        offsets_buf, data_buf = chars.buffers()[1:3]
        first = np.frombuffer(offsets_buf, dtype=np.int32, count=1, offset=4 * chars.offset)[0]
        n = len(chars)
        b = np.frombuffer(data_buf, dtype=np.uint8, count=width * n, offset=int(first)).reshape(
            n, width
        )
        if not (b[:, _SEPARATOR_AT] == np.asarray(_SEPARATORS, dtype=np.uint8)).all():
            return None
        if not (b[:, -1] == ord("Z")).all():
            return None
        fraction = None
        if width > 20:
            if not (b[:, 19] == ord(".")).all():
                return None
            fraction_digits = b[:, 20:-1].astype(np.int64) - 48
            if not ((fraction_digits >= 0) & (fraction_digits <= 9)).all():
                return None
            places = width - 21
            scale = 10 ** np.arange(places - 1, -1, -1, dtype=np.int64)
            # (".000Z" too: parse_timestamp reads it as the whole seconds, the same float)
            fraction = (fraction_digits @ scale).astype(np.float64) / float(10**places)
        digits = b[:, _DIGIT_AT].astype(np.int64) - 48
        if not ((digits >= 0) & (digits <= 9)).all():
            return None
        year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
        month = digits[:, 4] * 10 + digits[:, 5]
        day = digits[:, 6] * 10 + digits[:, 7]
        hour = digits[:, 8] * 10 + digits[:, 9]
        minute = digits[:, 10] * 10 + digits[:, 11]
        second = digits[:, 12] * 10 + digits[:, 13]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_days = np.asarray(_MONTH_DAYS)[np.clip(month, 0, 12)] + (leap & (month == 2))
        if not (
            (year >= 1970)
            & (month >= 1)
            & (month <= 12)
            & (day >= 1)
            & (day <= month_days)
            & (hour <= 23)
            & (minute <= 59)
            & (second <= 59)
        ).all():
            return None
        y = year - (month <= 2)
        era = y // 400
        yoe = y - era * 400
        doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
        days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
        epoch = (days * 86400 + hour * 3600 + minute * 60 + second).astype(np.float64)
        return epoch if fraction is None else epoch + fraction


_configured = False


def _one_thread_and_malloc() -> None:
    """pyarrow, as the engine uses it: one process judges on one core (more cores, more
    processes), so its compute kernels run on the calling thread (its default pool has a
    thread a core: they took the event loop's core, 76-87k events/s against 97-113k in
    ``bench peers``), and buffers come from malloc (its own allocator keeps freed batches
    for reuse: ~20 MB of a worker's resident memory)."""
    global _configured
    if _configured:
        return
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    pa.set_memory_pool(pa.system_memory_pool())
    _configured = True


def columns_enabled() -> bool:
    """Whether batches may be judged from columns: yes, unless ``STREAMPROC_COLUMNS=0`` is in
    the environment or pyarrow and numpy cannot be imported. Measured (bench/RESULTS.md):
    half the instructions a record on the peers workload (brute_force only, millisecond
    times: 34,672 -> 17,543 a record through the Judge), about even on the mixed stream of
    ``bench detect``; pyarrow and numpy, once loaded, are ~50 MB of a worker's resident
    memory. They are loaded by the first batch of 500 records or more, so a worker that never
    sees one (an edge host's MQTT binding) never pays it."""
    if os.environ.get("STREAMPROC_COLUMNS", "1") == "0":
        return False
    return all(importlib.util.find_spec(name) is not None for name in ("pyarrow", "numpy"))


def frame_reader_for(
    contract: Contract, fmt: str, mapping: Any, max_record_bytes: int, max_depth: int
) -> FrameReader | None:
    """A reader for a binding whose records a frame can hold, else None."""
    if fmt != "json" or mapping is not None or max_depth < 1:
        return None
    reader = FrameReader(contract, max_record_bytes)
    return reader if reader.usable else None
