"""FrameReader: a batch of one JSON binding -> typed columns in native code, or nothing.

The per-record decoders (records.py, batch.py) build a dict and an Event for every record,
because detectors read Events. A detector that says, as a column expression, which records
can matter to it (``Detector.column_prefilter``) needs neither for the others: the engine
judges event time from a column, the detector's expression picks its candidates from the
columns, and only the candidates are decoded into Events, by the binding's RecordDecoder.
This module makes those columns::

    values ─ b"\\n".join ─► pyarrow.json (contract fields typed) ─► checks ─► polars frame
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
  no record over ``max_record_bytes``; valid UTF-8;
- every value a scalar (no struct or list column: nested values need the depth guard);
  floats finite and below 2**63 (the reader takes NaN, and reads an integer beyond 64 bits
  as a float, where orjson refuses both);
- every required field present and not empty; every enum value in its enum as given;
- the timestamp written ``YYYY-MM-DDTHH:MM:SSZ`` (what nearly every producer writes), a real
  time (it reads back as written) from 1970 on. Other forms are correct, just not read here.

The columns are handed to polars (``pl.from_arrow``, no copy), whose expressions the
detectors' column prefilters are. Measured on the bench streams (CPU per record, batches of
5,000, one thread): ~1 us a record to read and check, about what ``orjson.loads`` costs
alone, against 2-2.6 us for the per-record decode into Events.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..contracts import Contract
from ..events import MAX_EPOCH, CoercionError, parse_timestamp

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

# ":SSZ", the end of a timestamp written YYYY-MM-DDTHH:MM:SSZ -> its seconds
_SECONDS_OF = {f":{s:02d}Z": float(s) for s in range(60)}


class RecordFrame:
    """The columns of a batch every record of which was vouched for (see the module)."""

    __slots__ = ("_polars", "table", "ts")

    def __init__(self, table: pa.Table, ts: pl.Series) -> None:
        self.table = table  # a column per field (every contract field), record order
        self.ts = ts        # event time of each record, epoch seconds (Float64)
        self._polars: dict[str, pl.Series] = {}

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def where(self, expr: pl.Expr) -> list[int]:
        """Positions of the records ``expr`` (a polars expression over field names) selects;
        a null is not selected. Only the columns it names are handed to polars."""
        import polars as pl

        cols = self._polars
        names = list(dict.fromkeys(expr.meta.root_names()))
        for name in names:
            if name not in cols:
                cols[name] = pl.Series(name, self.table.column(name))
        df = pl.DataFrame([cols[name] for name in names])
        return df.select(expr.alias("_")).to_series().arg_true().to_list()


class FrameReader:
    """Reads a batch of one JSON binding (no field mapping) into a RecordFrame."""

    def __init__(self, contract: Contract, max_record_bytes: int) -> None:
        self.contract = contract
        self.max_record_bytes = max_record_bytes
        # (name, required, enum, a string?) of the fields checked after reading, the
        # timestamp aside
        self._checked = [(f.name, f.name in contract.required, f.enum, f.type == "string")
                         for f in contract.fields.values() if f.name != "timestamp"]
        self._schema_types = {f.name: f.type for f in contract.fields.values()}
        self._read_options: Any = None
        self._enums: dict[str, Any] = {}
        self._parse_options: Any = None
        ts_spec = contract.fields.get("timestamp")
        # as BatchDecoder's column checks: an enum on a field that is not a string is
        # checked after a coercion, which a frame does not do
        self.usable = (ts_spec is not None and ts_spec.type == "timestamp"
                       and "timestamp" in contract.required
                       and all(f.enum is None or f.type == "string"
                               for f in contract.fields.values()))
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

        arrow = {"string": pa.string(), "bool": pa.bool_(), "int": pa.int64(),
                 "number": pa.float64(), "timestamp": pa.string()}
        schema = pa.schema([(name, arrow[kind]) for name, kind in self._schema_types.items()])
        # every contract field a column of its type (absent from every record: all null, as
        # ``data.get`` reads it); other fields as the reader infers them
        self._enums = {name: pa.array(sorted(enum), pa.string())
                       for name, _, enum, _ in self._checked if enum is not None}
        self._parse_options = pj.ParseOptions(explicit_schema=schema,
                                              unexpected_field_behavior="infer")
        # one block for the whole batch: a record never straddles two blocks' inferences
        self._read_options = pj.ReadOptions(use_threads=False, block_size=1 << 30)

    def _read(self, values: Sequence[bytes | None]) -> RecordFrame | None:
        import polars as pl
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
        try:
            table = pj.read_json(pa.BufferReader(joined), read_options=self._read_options,
                                 parse_options=self._parse_options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != n:
            return None
        for column in table.itercolumns():
            kind = column.type
            if pa.types.is_floating(kind):
                if column.null_count < n and not (
                        pc.all(pc.is_finite(column)).as_py()
                        and pc.max(pc.abs(column)).as_py() < 2.0 ** 63):
                    return None
            elif not (pa.types.is_string(kind) or pa.types.is_boolean(kind)
                      or pa.types.is_int64(kind) or pa.types.is_null(kind)
                      or pa.types.is_timestamp(kind)):
                return None
        for name, required, enum, text in self._checked:
            column = table.column(name)
            if required and (column.null_count or (text and pc.any(pc.equal(column, "")).as_py())):
                return None
            if enum is not None and column.null_count < n and \
                    not pc.all(pc.is_in(column, value_set=self._enums[name])).as_py():
                return None
        ts = self._times(table.column("timestamp"))
        if ts is None:
            return None
        return RecordFrame(table, pl.Series("ts", ts))

    def _times(self, stamps: pa.ChunkedArray) -> pa.Array | None:
        """Epoch seconds of ``YYYY-MM-DDTHH:MM:SSZ`` strings, exactly as ``parse_timestamp``
        gives them (the epoch of the minute, parsed by it once per minute, plus the
        seconds), or None if one is written otherwise."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if stamps.null_count or not pc.all(pc.equal(pc.binary_length(stamps), 20)).as_py():
            return None
        minutes = pc.dictionary_encode(pc.utf8_slice_codeunits(stamps, 0, 16)).combine_chunks()
        tails = pc.dictionary_encode(pc.utf8_slice_codeunits(stamps, 16, 20)).combine_chunks()
        epochs = []
        for minute in minutes.dictionary.to_pylist():
            try:
                epoch = parse_timestamp(minute + ":00Z")
            except CoercionError:
                return None
            if not 0 <= epoch <= MAX_EPOCH - 59:
                return None
            epochs.append(epoch)
        seconds = []
        for tail in tails.dictionary.to_pylist():
            second = _SECONDS_OF.get(tail)
            if second is None:
                return None
            seconds.append(second)
        return pc.add(pa.array(epochs, pa.float64()).take(minutes.indices),
                      pa.array(seconds, pa.float64()).take(tails.indices))


def columns_enabled() -> bool:
    """Whether batches may be judged from columns: polars and pyarrow are importable, and
    ``STREAMPROC_COLUMNS`` is not ``0`` (the per-event path alone, e.g. to compare the two)."""
    if os.environ.get("STREAMPROC_COLUMNS", "1") == "0":
        return False
    return all(importlib.util.find_spec(name) is not None for name in ("polars", "pyarrow"))


def frame_reader_for(contract: Contract, fmt: str, mapping: Any, max_record_bytes: int,
                     max_depth: int) -> FrameReader | None:
    """A reader for a binding whose records a frame can hold, else None."""
    if fmt != "json" or mapping is not None or max_depth < 1:
        return None
    reader = FrameReader(contract, max_record_bytes)
    return reader if reader.usable else None
