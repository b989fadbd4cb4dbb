"""FrameReader: a batch of one JSON binding -> typed columns read in native code, or nothing.

The per-record decoders (records.py, batch.py) build a dict and an Event for every record,
because detectors read Events. A detector that says, as a column expression, which records
can matter to it (``Detector.column_prefilter``) needs neither for the others: the engine
judges event time from a column, the detector's expression picks its candidates from the
columns, and only the candidates are decoded into Events, by the binding's RecordDecoder.
This module makes those columns::

    values ─ msgspec, a typed Struct a record ─► checks ─► columns (lists) + ts (epoch s)
                       │                            │
                       └─ any doubt ────────────────┴─► None: the caller decodes the batch
                                                        the per-record way, exactly as
                                                        without this module

A frame is only made when every record of the batch is one the per-record decoder accepts
without a coercion, so that judging from the frame and judging Events cannot differ. The
Struct of a binding has a field for each contract field, typed as the decoder takes it with
no coercion (a string, a bool, an int of 64 bits, a number: an int or a float; an enum a
``Literal`` of its values; required fields without a default), and one for each other field
the binding's records were seen to carry (any JSON scalar). msgspec refuses, in C, the
record for:

- anything not one JSON object (an empty payload, two objects, a byte order mark, invalid
  UTF-8, a lone surrogate escape); a field it does not know (the reader then learns the
  batch's fields and reads it again: a binding's records carry few; a name msgspec cannot
  take, with a quote, a backslash or a control character, is not learned); a value of the
  wrong JSON type (a number for a string, ``"true"`` for a bool, ``3.0`` for an int: the
  decoder would coerce or refuse it); a nested value (the depth guard's); a required field absent
  or null; an enum value not in the enum as given; an integer beyond 64 bits;

and the checks here refuse the batch for what msgspec takes but the decoder does not, or
takes differently:

- a key repeated in a record (msgspec keeps the last value, as orjson does; our decoder
  dead-letters it): with no whitespace before a colon, the number of ``":`` in the batch is
  at least the number of keys, and equals the number of fields read only when none repeats;
- a record over ``max_record_bytes``; a required string empty; a number not below 2**63
  in magnitude (orjson reads an integer beyond 64 bits as a float or not at all);
- the timestamp not written ``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.fffZ`` with 1
  to 9 fraction digits (what nearly every producer writes; the rows of each width are read
  together), or not a real time (it reads back as written) from 1970 on and up to
  ``MAX_EPOCH`` (a fraction of its last second is past it). Other forms are correct, just
  not read here.

A binding with a field mapping (``fields:``, mapping.py) is read the same way when its
records are flat (every value a scalar: anything else fails the Struct), where a dotted path
can only match as a literal key (``compile_path``): each source key of the mapping is a field
of the Struct, and the mapped fields are computed from the source columns as
``FieldMapping.apply`` computes them a record at a time: the first candidate present and not
null, the value map (looked up as written, then lowercased, a non-string as its
``str().lower()``; a value mapped to null removes the field), else the default; a field the
mapping does not name falls through by name, and a record's own key of a mapped name is
dropped. Then the decoder's checks, column-wise: required fields present and not empty, each
of exactly its type (an int in a number field made a float, as the decoder makes it), enum
values as given, the timestamp a string of the format above. A key only renamed onto a field
(one path, no map, no default, read by no other rule) is typed in the Struct as the field, so
msgspec checks it as it checks an unmapped field; other source keys are read as any scalar.
A binding whose mapping the columns cannot hold is judged per record as before: a path or
field name msgspec cannot take, a map value or default that is no scalar, a number field
read by a rule that also falls through by name (the rule would see its int, the column its
float). Nested records (Filebeat's ECS, falcosidekick's ``output_fields``) are judged per
record, not attempted here: the ``":`` count proves no key repeats only against the number
of keys read at every level, so each nested object would need a Struct of its own that
learns its own fields (and refuses unknown ones), and a path reaches a value by several
routes in a fixed order (the whole path as one key, then segment by segment with the rest as
one key at each level, a list index), each a column of its own to reconcile. A binding with
a mapping never ships its re-keyed copies as the records came (runtime ``_ships_raw``): its
Event's data is the mapped record. Measured through ``Judge.judge`` on the peers stream with
its keys rewritten (``bench/mapped.py``; brute_force only, batches of 1,250; instructions a
record by cachegrind, the difference of two runs of 10,000 and 29,001 records after the same
warm-up): renamed as nginx's JSON log names them (``time``, ``user``, ``remote_addr``, a
``status`` value map) 73,668 per record, 15,678 from columns (0.21x); flattened ECS
(``"@timestamp"``, ``"user.name"``, ``"source.ip"``, an ``"event.outcome"`` value map, a
candidate list) 80,770 against 19,380 (0.24x); the same records unmapped 31,966 against
11,113. A mapped binding read per record costs 2.3-2.5 times an unmapped one (the mapping's
dict and its Python a record); from columns, 1.4-1.7 times. (Since decode/batch.py decodes a
mapped binding's batch at once, per event costs 54,668 and 61,498.)

A column is a list of the decoder's values (None where a record has none, as ``dict.get``
reads it), built on first use. The detectors' column prefilters read columns; the engine
judges event time from ``ts`` with numpy. Measured on the peers stream (auth records of
~170 B; ns a record to read a batch and pick brute_force's candidates, medians of 7; the
same run): in batches of 1,250 (a partition's share of a 5,000-record fetch) 534 here
against 970 for pyarrow's JSON reader with the same checks, which this replaces; 709 against
956 in batches of 5,000; msgspec's decode alone 380-390. pyarrow also cost ~36 MB of a
worker's resident memory once imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, compress
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import orjson

from ..contracts import Contract, FieldSpec
from ..events import MAX_EPOCH
from .fields import EXACT_TYPES
from .mapping import FieldMapping, FieldRule

if TYPE_CHECKING:
    import numpy as np

# YYYY-MM-DDTHH:MM:SS (then "Z" or ".fffZ"): where its separators are, what they are, and
# where its digits are
_SEPARATOR_AT = [4, 7, 10, 13, 16]
_SEPARATORS = [ord(c) for c in "--T::"]
_DIGIT_AT = [i for i in range(19) if i not in _SEPARATOR_AT]
_MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
# fields of a binding's records beyond its contract that a reader learns (more: per event)
MAX_EXTRA_FIELDS = 64
_COLON, _QUOTE, _SPACE = ord(":"), ord('"'), ord(" ")
_UNSET = msgspec.UNSET
_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
# what msgspec will not rename a Struct field onto (defstruct raises): a record field so named
# is never learned, so a batch holding one is left to the decoder
_UNNAMEABLE = re.compile(r'["\\\x00-\x1f]')


class RecordFrame:
    """The columns of a batch every record of which was vouched for (see the module)."""

    __slots__ = ("_columns", "_derived", "_fields", "_held", "_records", "ts")

    def __init__(
        self,
        records: list[Any],
        fields: dict[str, Callable[[Any], Any]],
        columns: dict[str, list[Any]],
        ts: np.ndarray[Any, Any],
        held: frozenset[str] = frozenset(),
        derived: tuple[str, ...] = (),
    ) -> None:
        self._records = records  # a Struct a record, record order
        self._fields = fields  # field name -> its getter on a Struct
        self._columns = columns  # those built so far (None for absent, as data.get)
        self.ts = ts  # event time of each record, epoch seconds (float64)
        # fields every record holds (required in the Struct read with): never UNSET
        self._held = held
        # fields a field mapping computed (in ``columns``, None where a record has none):
        # no getter reads them
        self._derived = derived

    def __len__(self) -> int:
        return len(self._records)

    def column(self, name: str) -> list[Any]:
        """The values of field ``name``, one a record, as the decoder gives them (None where
        a record has none; every record None for a field no record carries)."""
        col = self._columns.get(name)
        if col is None:
            get = self._fields.get(name)
            if get is None:
                col = [None] * len(self._records)
            elif name in self._held:
                col = list(map(get, self._records))
            else:
                col = _present(get, self._records)
            self._columns[name] = col
        return col

    def value(self, name: str, i: int) -> Any:
        """Field ``name`` of the ``i``-th record, as ``column(name)[i]`` gives it."""
        col = self._columns.get(name)
        if col is not None:
            return col[i]
        get = self._fields.get(name)
        value = None if get is None else get(self._records[i])
        return None if value is _UNSET else value

    def row(self, i: int) -> dict[str, Any]:
        """The ``i``-th record's fields, as the decoder reads them."""
        record = self._records[i]
        row = {
            name: value
            for name, get in self._fields.items()
            if (value := get(record)) is not _UNSET
        }
        for name in self._derived:
            value = self._columns[name][i]
            if value is not None:  # (a mapping's None removes the field)
                row[name] = value
        return row

    def where(self, select: Callable[[RecordFrame], Any]) -> list[int]:
        """Positions of the records ``select`` (a column prefilter: the frame -> a truth
        value a record, in order) picks."""
        return list(compress(range(len(self._records)), select(self)))


def _present(get: Callable[[Any], Any], records: list[Any]) -> list[Any]:
    col = list(map(get, records))
    if _UNSET in col:
        col = [None if v is _UNSET else v for v in col]
    return col


class _Shape:
    """A Struct of a binding's records and what reading a batch with it needs."""

    __slots__ = ("decode", "fields", "held", "optional", "optional_count", "width")

    def __init__(self, specs: list[tuple[str, Any, bool]]) -> None:
        # attribute names are ours (a record's keys need not be identifiers); the JSON
        # names are renamed onto them
        fields: list[Any] = []
        names: dict[str, str] = {}
        for i, (name, kind, needed) in enumerate(specs):
            attr = f"f{i}"
            names[attr] = name
            if needed:
                fields.append((attr, kind))
            else:
                fields.append((attr, kind | msgspec.UnsetType, msgspec.UNSET))
        struct = msgspec.defstruct(
            "Record", fields, rename=names, kw_only=True, gc=False, forbid_unknown_fields=True
        )
        self.decode = msgspec.json.Decoder(struct).decode
        self.fields: dict[str, Callable[[Any], Any]] = {
            name: attrgetter(attr) for attr, name in names.items()
        }
        self.width = len(specs)  # fields a record holds, the absent ones aside
        # the required fields: msgspec refuses a record without one, so none reads UNSET
        self.held = frozenset(name for name, _, needed in specs if needed)
        optional = [attr for attr, (_, _, needed) in zip(names, specs, strict=True) if not needed]
        # the optional fields of a record at once (a tuple of them; one field: the value)
        self.optional: Callable[[Any], Any] | None = attrgetter(*optional) if optional else None
        self.optional_count = len(optional)

    def absent(self, records: list[Any]) -> int:
        """How many optional fields the records do not hold, all together."""
        if self.optional is None:
            return 0
        values: Iterable[Any] = map(self.optional, records)
        if self.optional_count > 1:
            values = chain.from_iterable(values)
        return list(values).count(_UNSET)


_NONE = type(None)
_SCALAR_TYPES = (_NONE, bool, int, float, str)


class _Mapped:
    """A binding's field mapping, computed column-wise from the source columns of a batch of
    flat records, as ``FieldMapping.apply`` and the decoder's field checks compute it a record
    at a time (see the module docstring)."""

    def __init__(self, contract: Contract, mapping: FieldMapping) -> None:
        self.rules = mapping.rules
        self.mapped = frozenset(mapping.mapped)
        sources: dict[str, None] = {}  # every path of every rule, in order: a source column
        for rule in self.rules:
            sources.update(dict.fromkeys(rule.paths))
        self.sources = list(sources)
        # (key, field) of the rules that only rename a key onto a contract field: one path, no
        # value map, no default, a key no other rule reads and that no contract field is
        # named. The field's value is the key's as it is (its null: the field absent), so the
        # Struct reads the key typed as the field and msgspec checks it; not a number field,
        # whose int the Struct makes a float while the key stays in the record as written.
        readers: dict[str, int] = {}
        for rule in self.rules:
            for path in rule.paths:
                readers[path] = readers.get(path, 0) + 1
        self.renamed = [
            (rule.paths[0], rule.name)
            for rule in self.rules
            if len(rule.paths) == 1
            and rule.value_map is None
            and rule.default is None
            and rule.name in contract.fields
            and contract.fields[rule.name].type != "number"
            and readers[rule.paths[0]] == 1
            and rule.paths[0] not in contract.fields
        ]
        self.renamed_fields = frozenset(name for _, name in self.renamed)
        # name -> (required, its FieldSpec) of the contract fields a rule computes
        required = set(contract.required)
        self.checks = {
            rule.name: (rule.name in required, contract.fields[rule.name])
            for rule in self.rules
            if rule.name in contract.fields
        }
        constants = [rule.default for rule in self.rules]
        constants += [v for rule in self.rules for v in (rule.value_map or {}).values()]
        number_sources = [
            p
            for p in self.sources
            if p not in self.mapped and p in contract.fields and contract.fields[p].type == "number"
        ]
        self.usable = (
            not any(map(_UNNAMEABLE.search, self.sources))
            and not any(map(_UNNAMEABLE.search, self.mapped))
            # a value map's or default's value lands in the record as it is: a list or an
            # object would be no JSON scalar of a column
            and all(type(v) in _SCALAR_TYPES for v in constants)
            # a number field that falls through by name is read as a float (an int in it is
            # a float once decoded) while a rule reading it sees the int as written
            and not number_sources
        )

    def columns(self, source: Callable[[str], list[Any]], n: int) -> dict[str, list[Any]] | None:
        """The column of each mapped field (None where a record has none), checked as the
        decoder checks it; None if a record is one the decoder would refuse or coerce."""
        out: dict[str, list[Any]] = {}
        renamed = self.renamed_fields
        for rule in self.rules:
            if rule.name in renamed:
                out[rule.name] = source(rule.paths[0])  # checked by msgspec
                continue
            col = _first_present([source(p) for p in rule.paths], n)
            default = rule.default
            if rule.value_map is not None:
                col = _translated(rule, col)
            elif default is not None and None in col:
                col = [default if v is None else v for v in col]
            check = self.checks.get(rule.name)
            if check is not None:
                checked = _checked(*check, col)
                if checked is None:
                    return None
                col = checked
            out[rule.name] = col
        return out


def _first_present(columns: list[list[Any]], n: int) -> list[Any]:
    """A record's first value that is present and not null, of the candidate columns."""
    if not columns:
        return [None] * n
    col = columns[0]
    for other in columns[1:]:
        if None in col:
            col = [v if v is not None else w for v, w in zip(col, other, strict=True)]
    return col


def _translated(rule: FieldRule, col: list[Any]) -> list[Any]:
    """``col`` through ``rule``'s value map, its default where a record has no value."""
    default, translate = rule.default, rule.translate
    if set(map(type, col)) <= {str, _NONE}:
        # strings (the common case): each distinct one looked up once. Only strings: 1,
        # 1.0 and True are one key of a dict, and map as "1", "1.0" and "true"
        table = {v: translate(v) for v in set(col) if v is not None}
        table[None] = default
        return list(map(table.__getitem__, col))
    return [default if v is None else translate(v) for v in col]


def _checked(required: bool, spec: FieldSpec, col: list[Any]) -> list[Any] | None:
    """The mapped column of contract field ``spec`` as the decoder's checks leave it, or None
    if they would refuse or coerce a value in it (an int in a number field: made a float, as
    they make it)."""
    if required and (None in col or "" in col):
        return None
    if spec.type == "timestamp":
        # "timestamp" is read from the column by _times (strings only); another timestamp
        # field is not checked by the decoder
        if spec.name == "timestamp" and not set(map(type, col)) <= {str}:
            return None
        return col
    kinds = set(map(type, col)) - {_NONE}
    if spec.enum is not None:  # a string field (``FrameReader.usable``)
        values = set(col)
        values.discard(None)
        return col if kinds <= {str} and values <= frozenset(spec.enum) else None
    exact = EXACT_TYPES[spec.type]
    if kinds <= {exact}:
        return col
    if spec.type == "number" and kinds <= {int, float}:
        ints = [v for v in col if type(v) is int]
        if min(ints) > -(2**63) and max(ints) < 2**63:
            return [float(v) if type(v) is int else v for v in col]  # coerce_number's
    return None


class FrameReader:
    """Reads a batch of one JSON binding into a RecordFrame.

    Two Structs: one with a field for every contract field and every other field seen (the
    absent ones UNSET), and one of the fields every record of the last batch read with the
    first held, each required (its records need no count of absent fields: ~140 ns a record
    less). A batch is read with the second while its records fit it; once one does not,
    it and the next 8 are read with the first, the last of them reshaping the second."""

    def __init__(
        self, contract: Contract, max_record_bytes: int, mapping: FieldMapping | None = None
    ) -> None:
        self.contract = contract
        self.max_record_bytes = max_record_bytes
        self._mapped = None if mapping is None else _Mapped(contract, mapping)
        ts_spec = contract.fields.get("timestamp")
        self.usable = (
            ts_spec is not None
            and ts_spec.type == "timestamp"
            and "timestamp" in contract.required
            and all(f.enum is None or f.type == "string" for f in contract.fields.values())
            and not any(map(_UNNAMEABLE.search, contract.fields))
            and (self._mapped is None or self._mapped.usable)
        )
        self._extras: list[str] = []  # other fields seen, in the order first seen
        self._specs: list[tuple[str, Any, bool]] = []
        self._any: _Shape | None = None  # every field, the optional ones UNSET when absent
        self._fixed: _Shape | None = None  # the fields every record held, required
        self._always: set[str] | None = None  # those fields
        self._fixed_rest = 0  # batches to read with ``_any`` before trying ``_fixed`` again
        # batches not taken, for tests and the bench (why is logged nowhere: it is normal)
        self.declined = 0

    def read(self, values: Sequence[bytes | None]) -> RecordFrame | None:
        frame = self._read(values) if self.usable and values else None
        if frame is None:
            self.declined += 1
        return frame

    def _prepare(self) -> None:
        """The Structs of the contract's fields and the extras seen so far."""
        int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
        # orjson reads an integer beyond 64 bits as a float or not at all: a number field
        # holding one is left to the decoder
        number = Annotated[float, msgspec.Meta(gt=-(2.0**63), lt=2.0**63)]
        scalar = {"string": str, "bool": bool, "int": int64, "number": number}
        nonempty = Annotated[str, msgspec.Meta(min_length=1)]
        required = set(self.contract.required)
        any_scalar = int64 | float | str | bool | None

        def typed(key: str, f: FieldSpec) -> tuple[str, Any, bool]:
            """Record key ``key`` typed as the decoder takes contract field ``f``."""
            kind: Any = Literal[tuple(f.enum)] if f.enum else scalar.get(f.type, str)
            if f.name in required:
                if kind is str:
                    kind = nonempty  # the decoder refuses a required field that is ""
                return (key, kind, True)
            return (key, kind | None, False)  # null: as absent

        specs: list[tuple[str, Any, bool]] = []  # (name, type, required)
        mapped = self._mapped
        for f in self.contract.fields.values():
            if mapped is not None and f.name in mapped.mapped:
                # a rule computes the field: the record's key of its name is dropped
                specs.append((f.name, any_scalar, False))
            else:
                specs.append(typed(f.name, f))
        if mapped is not None:
            # a key only renamed onto a field: typed as the field (see _Mapped.renamed)
            specs += [typed(key, self.contract.fields[name]) for key, name in mapped.renamed]
            # the mapping's other source keys, and the fields it computes that are not the
            # contract's, any scalar: a rule takes what it finds
            named = {name for name, _, _ in specs}
            for name in chain(mapped.sources, sorted(mapped.mapped)):
                if name not in named:
                    named.add(name)
                    specs.append((name, any_scalar, False))
        specs += [(name, any_scalar, False) for name in self._extras]
        self._specs = specs
        self._any = _Shape(specs)
        self._fixed = None
        if self._always is not None:
            always = self._always
            self._fixed = _Shape([(n, k, True) for n, k, _ in specs if n in always])

    def _read(self, values: Sequence[bytes | None]) -> RecordFrame | None:
        import numpy as np

        if self._any is None:
            self._prepare()
        try:
            if max(map(len, values)) > self.max_record_bytes:  # type: ignore[arg-type]
                return None
            joined = b",".join(values)  # type: ignore[arg-type]
        except TypeError:  # a None (tombstone): an empty payload, a dead letter
            return None
        read = self._parse(values)  # type: ignore[arg-type]
        if read is None:
            return None
        shape, records, keys = read
        # Keys: with no whitespace right before a colon, every key ends in '":', so the
        # batch's count('":') is at least its number of keys, which is at least the number
        # of fields read; no key repeats when the first equals the last. (A byte below '!'
        # before a colon is whitespace, or a space in a string: left to the decoder.)
        raw = np.frombuffer(joined, dtype=np.uint8)
        before = raw[np.flatnonzero(raw == _COLON) - 1]
        if bool((before <= _SPACE).any()):
            return None
        if int(np.count_nonzero(before == _QUOTE)) != keys:
            return None
        fields = shape.fields
        mapped = self._mapped
        if mapped is None:
            columns = {"timestamp": list(map(fields["timestamp"], records))}
            derived: tuple[str, ...] = ()
        else:

            def source(name: str) -> list[Any]:
                get = fields.get(name)
                if get is None:  # the Struct read with holds no such field: no record has it
                    return [None] * len(records)
                if name in shape.held:
                    return list(map(get, records))
                return _present(get, records)

            got = mapped.columns(source, len(records))
            if got is None:
                return None
            columns = got
            derived = tuple(columns)
            fields = {name: get for name, get in fields.items() if name not in mapped.mapped}
            if "timestamp" not in columns:  # it falls through by name
                columns["timestamp"] = list(map(fields["timestamp"], records))
        ts = _times(columns["timestamp"])
        if ts is None:
            return None
        return RecordFrame(records, fields, columns, ts, shape.held, derived)

    def _parse(self, values: Sequence[bytes]) -> tuple[_Shape, list[Any], int] | None:
        """(the Struct read with, a Struct a record, the fields read), learning fields the
        contract does not name once; None if a record is not one a frame can hold."""
        fixed = self._fixed
        reshape = fixed is None
        if fixed is not None and self._fixed_rest == 0:
            try:
                records = list(map(fixed.decode, values))
                return fixed, records, fixed.width * len(records)
            except _ERRORS:
                self._fixed_rest = 8
        elif self._fixed_rest:
            self._fixed_rest -= 1
            reshape = self._fixed_rest == 0  # the fixed Struct is tried again next
        shape = self._any
        assert shape is not None
        try:
            records = list(map(shape.decode, values))
        except _ERRORS as exc:
            if "unknown field" not in str(exc) or not self._learn(values):
                return None
            shape = self._any
            assert shape is not None
            try:
                records = list(map(shape.decode, values))
            except _ERRORS:
                return None
        if reshape:
            self._learn_always(shape, records)
        return shape, records, shape.width * len(records) - shape.absent(records)

    def _learn_always(self, shape: _Shape, records: list[Any]) -> None:
        """Make the fields each of ``records`` holds the fixed Struct's."""
        held = {name for name, get in shape.fields.items() if _UNSET not in map(get, records)}
        if held != self._always:
            self._always = held
            self._fixed = _Shape([(n, k, True) for n, k, _ in self._specs if n in held])

    def _learn(self, values: Sequence[bytes]) -> bool:
        """Add the other fields of ``values``' objects to the Structs (up to
        MAX_EXTRA_FIELDS in all); whether any was added."""
        room = MAX_EXTRA_FIELDS - len(self._extras)
        if room <= 0:  # (a stream of ever new field names: judged per event from here on)
            return False
        known = {name for name, _, _ in self._specs}
        new: dict[str, None] = {}  # in the order first seen
        for value in values:
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if type(record) is dict:
                new.update(
                    (k, None) for k in record if k not in known and not _UNNAMEABLE.search(k)
                )
                if len(new) >= room:
                    break
        if not new:
            return False
        self._extras += list(new)[:room]
        self._prepare()
        return True


def _times(stamps: list[str]) -> Any:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM:SSZ`` strings, or of ``...:SS.fffZ`` ones with 1
    to 9 fraction digits, exactly as ``parse_timestamp`` gives them, or None if one is
    written otherwise or names no real time from 1970 on. The rows of each width are read
    together: Go (RFC3339Nano) and Java (Instant) drop a fraction's trailing zeros, so one
    batch of theirs holds several widths."""
    import numpy as np

    widths = set(map(len, stamps))
    if not all(width == 20 or 22 <= width <= 30 for width in widths):
        return None
    text = "".join(stamps)
    if not text.isascii():
        return None
    if len(widths) == 1:
        width = widths.pop()
        chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(len(stamps), width)
        return times_of(chars)
    lengths = np.fromiter(map(len, stamps), dtype=np.intp, count=len(stamps))
    epoch = np.empty(len(stamps))
    for width in widths:
        rows = np.flatnonzero(lengths == width)
        text = "".join(map(stamps.__getitem__, rows.tolist()))
        chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(len(rows), width)
        part = times_of(chars)
        if part is None:
            return None
        epoch[rows] = part
    return epoch


def times_of(b: np.ndarray[Any, Any]) -> Any:
    """``_times`` over the characters of one width, a row a time (a byte matrix), read
    column-wise. Exact: the whole seconds are whole numbers, and a fraction
    ``digits / 10**k`` is the correctly rounded quotient of two exact doubles, the very float
    ``float(".ddd")`` gives; parse_timestamp adds it to the whole seconds as is done here."""
    import numpy as np

    n, width = b.shape
    places = width - 21  # fraction digits (-1: none)
    layout = _layouts.get(width)
    if layout is None:
        layout = _layouts[width] = _layout(width)
    fixed_at, fixed, digit_at = layout
    if not (b[:, fixed_at] == fixed).all():
        return None
    digits = b[:, digit_at] - np.uint8(48)  # a byte below '0' wraps round: above 9 too
    if not (digits <= 9).all():
        return None
    d = digits.astype(np.int64)
    hour = d[:, 8] * 10 + d[:, 9]
    if not ((hour <= 23).all() and (d[:, [10, 12]] <= 5).all()):
        return None
    seconds = hour * 3600 + d[:, 10:14] @ _MINUTE_SECOND
    if (b[:, :10] == b[0, :10]).all():
        # one date in the batch (nearly always): its days once, by the calendar
        day = _days(int(d[0, 0:4] @ _YEAR), int(d[0, 4:6] @ _TWO), int(d[0, 6:8] @ _TWO))
        if day is None:
            return None
        epoch = (seconds + day * 86400).astype(np.float64)
    else:
        days = _days_of(d)
        if days is None:
            return None
        epoch = (seconds + days * 86400).astype(np.float64)
    if places > 0:
        if epoch.max() >= MAX_EPOCH:
            return None  # a fraction of the last second in range is past it (parse_timestamp)
        # (".000Z" too: parse_timestamp reads it as the whole seconds, the same float)
        scale = 10 ** np.arange(places - 1, -1, -1, dtype=np.int64)
        epoch += (d[:, 14:] @ scale).astype(np.float64) / float(10**places)
    return epoch


_MINUTE_SECOND = [600, 60, 10, 1]
_YEAR = [1000, 100, 10, 1]
_TWO = [10, 1]
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_layouts: dict[int, tuple[list[int], Any, list[int]]] = {}


def _layout(width: int) -> tuple[list[int], Any, list[int]]:
    """For stamps of ``width``: where the fixed characters are, what they are, and where the
    digits are (the date and time's, then the fraction's)."""
    import numpy as np

    fixed_at = [*_SEPARATOR_AT, width - 1]
    fixed = [*_SEPARATORS, ord("Z")]
    digit_at = list(_DIGIT_AT)
    if width > 20:
        fixed_at.append(19)
        fixed.append(ord("."))
        digit_at += range(20, width - 1)
    return fixed_at, np.asarray(fixed, dtype=np.uint8), digit_at


def _days(year: int, month: int, day: int) -> int | None:
    """Days from 1970-01-01 to a real date from 1970 on, else None."""
    import datetime

    if year < 1970:
        return None
    try:
        return datetime.date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def _days_of(d: np.ndarray[Any, Any]) -> Any:
    """Days from 1970-01-01 of each row's date (digits: YYYYMMDD first), or None if one is
    no real date from 1970 on (days_from_civil, H. Hinnant)."""
    import numpy as np

    year = d[:, 0:4] @ _YEAR
    month = d[:, 4:6] @ _TWO
    day = d[:, 6:8] @ _TWO
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.asarray(_MONTH_DAYS)[np.clip(month, 0, 12)] + (leap & (month == 2))
    if not ((year >= 1970) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)).all():
        return None
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def import_numpy_meanwhile() -> None:
    """Import numpy in a thread of its own, for a worker about to wait (a consumer group's
    join: seconds of network, on Tansu half the session timeout): the first batch read into
    columns then does not pay the import (~0.2 s, more on a busy machine) on the way to the
    first record judged. A batch that comes first waits for the import under way, as
    Python's import lock has it."""
    import sys
    import threading

    if "numpy" in sys.modules or importlib.util.find_spec("numpy") is None:
        return
    threading.Thread(target=importlib.import_module, args=("numpy",), daemon=True).start()


def columns_enabled() -> bool:
    """Whether batches may be judged from columns: yes, unless ``STREAMPROC_COLUMNS=0`` is in
    the environment or numpy cannot be imported (it is loaded by the first batch of
    ``runtime.MIN_FRAME`` records or more: ~13 MB of a worker's resident memory). Measured
    (bench/RESULTS.md): half the instructions a record or less on the peers workload
    (brute_force only), about even on the mixed stream of ``bench detect``."""
    if os.environ.get("STREAMPROC_COLUMNS", "1") == "0":
        return False
    return importlib.util.find_spec("numpy") is not None


def frame_reader_for(
    contract: Contract,
    fmt: str,
    mapping: FieldMapping | None,
    max_record_bytes: int,
    max_depth: int,
) -> FrameReader | None:
    """A reader for a binding whose records a frame can hold, else None."""
    if fmt != "json" or max_depth < 1:
        return None
    reader = FrameReader(contract, max_record_bytes, mapping)
    return reader if reader.usable else None
