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
the binding's records were seen to carry, typed by what it was seen to hold (see "Objects
and lists" below). msgspec refuses, in C, the record for:

- anything not one JSON object (an empty payload, two objects, a byte order mark, invalid
  UTF-8, a lone surrogate escape); a field it does not know, at any level (the reader then
  learns what the batch's records hold and reads it again: a binding's records carry few
  fields; a name msgspec cannot take, with a quote, a backslash or a control character, is
  not learned); a value of the wrong JSON type (a number for a string, ``"true"`` for a
  bool, ``3.0`` for an int: the decoder would coerce or refuse it; an object where a scalar
  was seen, or the reverse); a required field absent or null; an enum value not in the enum
  as given; an integer beyond 64 bits;

and the checks here refuse the batch for what msgspec takes but the decoder does not, or
takes differently:

- a key repeated in a record, at any level (msgspec keeps the last value, as orjson does;
  our decoder dead-letters it): the keys written in the batch (``_keys_written``: each a
  quote no backslash escapes, then a colon, whitespace at most between) are the fields
  read, at every level, only when none repeats;
- a record over ``max_record_bytes``; a required string empty; a number not below 2**63
  in magnitude (orjson reads an integer beyond 64 bits as a float or not at all);
- the timestamp not written ``YYYY-MM-DDTHH:MM:SS`` with no fraction or 1 to 9 fraction
  digits, then ``Z``, ``±HH:MM`` or ``±HHMM`` (what nearly every producer writes: nginx's
  ``$time_iso8601`` and Python's ``isoformat()`` an offset; the rows of each width are read
  together), nor a number (epoch seconds, or milliseconds to nanoseconds, as
  ``epoch_from_number`` tells them apart; typed to be read once one is seen), or not a real
  time (it reads back as written) from 1970 on and up to ``MAX_EPOCH`` (a fraction of its
  last second is past it), its offset's hours above 23 or minutes above 59. Other forms are
  correct, just not read here.

Objects and lists. A field the contract does not type is learnt as what the records hold
there: a scalar; a list of scalars (or a scalar: the union msgspec reads); an object, read
by a Struct of its own whose fields are learnt the same way, each optional, at any depth up
to the binding's ``max_depth`` (``MAX_NESTED_FIELDS`` fields in all), or null in some
records (CloudTrail's ``requestParameters``); or a list of such objects (or null), read by
one Struct for all of them. Null and an empty list go with any kind. A field that held an
object in one record and a scalar in another, or a list holding a list, or objects and
scalars, cannot be typed: a batch holding such a record is judged per record. An object
absent from a record reads as its Struct's shared empty instance, so that a path through it
reads on in C (``attrgetter``) to an absent value (through a null, it reads ``_BLANK``),
and the keys read are counted at every level, in lists too (an empty instance: none). The
fixed Struct (see FrameReader) requires, at every level, the fields each record of a batch
held: only the others' keys are counted.

A binding with a field mapping (``fields:``, mapping.py) is read the same way: each source
key of the mapping is a field of the Struct, and the mapped fields are computed from the
source columns as ``FieldMapping.apply`` computes them a record at a time: a path is found
where ``compile_path`` looks, in its order (the whole path as one key, then at each object
the rest of the path as one key, the last segment last), each place read in C and the
first present taken (a key present with null stops the search, as there); a path that
reaches an object or a list declines the batch (a column holds values); a mapping with a
numeric segment (a list index) learns no objects. Then: the first candidate present and not
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
float). A binding with a mapping never ships its re-keyed copies as the records came
(runtime ``_ships_raw``): its Event's data is the mapped record. Filebeat's nested ECS auth
records (``bench/mapped.py``'s nested ECS: ~640 B, ten objects, brute_force only, batches
of 1,250; ns a record through ``Judge.judge``, a 2-core machine): 14,300-16,300 per event,
7,300-7,900 from columns, of which 3,200 to read a batch (msgspec's decode 1,700).

Flat records, measured through ``Judge.judge`` on the peers stream with its keys rewritten
(``bench/mapped.py``; brute_force only, batches of 1,250; instructions a record by
cachegrind, the difference of two runs of 10,000 and 29,001 records after the same warm-up):
renamed as nginx's JSON log names them (``time``, ``user``, ``remote_addr``, a ``status``
value map) 73,668 per record, 15,678 from columns (0.21x); flattened ECS (``"@timestamp"``,
``"user.name"``, ``"source.ip"``, an ``"event.outcome"`` value map, a candidate list) 80,770
against 19,380 (0.24x); the same records unmapped 31,966 against 11,113. A mapped binding
read per record costs 2.3-2.5 times an unmapped one (the mapping's dict and its Python a
record); from columns, 1.4-1.7 times. (Since decode/batch.py decodes a mapped binding's
batch at once, per event costs 54,668 and 61,498.)

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
from itertools import chain, compress, repeat
from operator import attrgetter, is_
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import orjson

from ..contracts import Contract, FieldSpec
from ..events import _MS_THRESHOLD, _NS_THRESHOLD, _US_THRESHOLD, MAX_EPOCH
from .fields import EXACT_TYPES
from .mapping import FieldMapping, FieldRule
from .records import DEFAULT_MAX_DEPTH

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
_COLON, _QUOTE, _BACKSLASH = ord(":"), ord('"'), ord("\\")
_UNSET = msgspec.UNSET
_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
# any JSON scalar the decoder takes as it is: orjson reads an integer beyond 64 bits as a float
# or not at all, so a record holding one is left to the decoder
_INT64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_ANY_SCALAR = _INT64 | float | str | bool | None
# what a learned field of a binding's records holds (``_kind_of``): a scalar, a list of
# scalars (or a scalar), or an object: its fields' kinds by name (a dict)
_SCALAR, _LIST = "scalar", "list"
_NULL = "null"  # (a field seen null only: a scalar, or an object in records to come)
_EMPTY_LIST = "[]"  # (a field seen an empty list only: of scalars, or of objects to come)
# learned fields of nested objects, all levels together (more: per event)
MAX_NESTED_FIELDS = 256
_NEVER = object()  # (what no field reads)
# what msgspec will not rename a Struct field onto (defstruct raises): a record field so named
# is never learned, so a batch holding one is left to the decoder
_UNNAMEABLE = re.compile(r'["\\\x00-\x1f]')


class RecordFrame:
    """The columns of a batch every record of which was vouched for (see the module)."""

    __slots__ = ("_columns", "_complex", "_derived", "_fields", "_held", "_records", "ts")

    def __init__(
        self,
        records: list[Any],
        fields: dict[str, Callable[[Any], Any]],
        columns: dict[str, list[Any]],
        ts: np.ndarray[Any, Any],
        held: frozenset[str] = frozenset(),
        derived: tuple[str, ...] = (),
        complex_fields: dict[str, _Sub | _ListOf | None] | None = None,
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
        # fields that may hold an object (its _Sub) or a list (None): read back as the
        # decoder's dicts and lists
        self._complex = complex_fields or {}

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
            elif name in self._complex:
                sub = self._complex[name]
                col = [_plain(v, sub) for v in map(get, self._records)]
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
        if name in self._complex:
            return _plain(value, self._complex[name])
        return None if value is _UNSET else value

    def row(self, i: int) -> dict[str, Any]:
        """The ``i``-th record's fields, as the decoder reads them."""
        record = self._records[i]
        row = {
            name: value
            for name, get in self._fields.items()
            if (value := get(record)) is not _UNSET
        }
        for name, sub in self._complex.items():
            if name in row:
                if sub is not None and row[name] is sub.empty:  # (absent: its default)
                    del row[name]
                else:
                    row[name] = _plain(row[name], sub)
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


def _plain(value: Any, sub: _Sub | _ListOf | None) -> Any:
    """A learned field's value as the decoder reads it: an object (a Struct of ``sub``) a
    dict, a list a list (of a ``_ListOf``, its objects dicts); None where the record has
    none (UNSET, or ``sub``'s default)."""
    if value is _UNSET or (sub is not None and value is sub.empty):
        return None
    if type(value) is list:
        if type(sub) is _ListOf:
            return list(map(sub.sub.plain, value))
        return list(value)
    if sub is not None and type(value) is sub.type:
        return sub.plain(value)  # type: ignore[union-attr]
    return value


def _absent(optional: Callable[[Any], Any] | None, count: int, objects: list[Any]) -> int:
    """How many of their ``count`` optional fields (``optional``: their getter, a tuple of
    them for more than one) ``objects`` do not hold, all together."""
    if optional is None:
        return 0
    values: Iterable[Any] = map(optional, objects)
    if count > 1:
        values = chain.from_iterable(values)
    return list(values).count(_UNSET)


def _count_is(values: list[Any], obj: Any) -> int:
    """How many of ``values`` are ``obj`` itself (not an equal one)."""
    return sum(map(is_, values, repeat(obj)))


class _NullableTree(dict):  # type: ignore[type-arg]
    """The kind of an object field that records also hold null: its fields' kinds by name.
    Equal only to another such tree (a field that became nullable was learnt anew)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is _NullableTree and dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None


class _Items:
    """The kind of a field that holds lists of objects (or null): the objects' fields'
    kinds by name (``tree``)."""

    __slots__ = ("tree",)

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree

    def __eq__(self, other: object) -> bool:
        return type(other) is _Items and self.tree == other.tree

    __hash__ = None  # type: ignore[assignment]


def _kind_of(kind: Any, value: Any, nested: bool) -> Any:
    """The kind of a field seen as ``kind`` so far (None: not seen) that holds ``value`` too,
    or None if no Struct can hold both (an object and a scalar other than null or a list, a
    list holding a container, a name msgspec cannot take; any object or list where
    ``nested`` is false). An object that some records hold null is a ``_NullableTree``. A
    kind that ``value`` leaves as it was is returned itself (a record at a time, most do)."""
    t = type(value)
    if t is dict:
        if not nested:
            return None
        if kind is None:
            tree: dict[str, Any] = {}
        elif kind == _NULL:
            tree = _NullableTree()
        elif isinstance(kind, dict):
            tree = kind  # (copied once a field of it changes)
        else:
            return None
        for name, child in value.items():
            seen = tree.get(name)
            learned = _kind_of(seen, child, nested)
            if learned is None:
                return None
            if learned is seen:  # (a name seen before was nameable)
                continue
            if _UNNAMEABLE.search(name):
                return None
            if tree is kind:
                tree = type(kind)(kind)
            tree[name] = learned
        return tree
    if isinstance(kind, dict):
        if value is None:
            return kind if type(kind) is _NullableTree else _NullableTree(kind)
        return None
    if value is None:
        return _NULL if kind is None else kind
    if t is list:
        if not nested:
            return None
        if not value:
            if kind is None or kind == _NULL:
                return _EMPTY_LIST
            return kind if kind in (_LIST, _EMPTY_LIST) or type(kind) is _Items else _LIST
        held = set(map(type, value))
        if dict in held:  # objects only, each read by one Struct
            if len(held) > 1 or not (kind in (None, _NULL, _EMPTY_LIST) or type(kind) is _Items):
                return None
            start = items = kind.tree if type(kind) is _Items else None
            for item in value:
                items = _kind_of(items, item, nested)
                if items is None:
                    return None
            assert items is not None  # (a list of objects: one at least)
            return kind if items is start else _Items(items)
        if list in held or type(kind) is _Items:
            return None
        return _LIST
    if type(kind) is _Items:
        return None
    return _SCALAR if kind is None or kind == _NULL else kind


def _depth_of(kind: Any) -> int:
    """The levels of containers a field of ``kind`` adds (keys_within's depth, less one)."""
    if isinstance(kind, dict):
        return 1 + max(map(_depth_of, kind.values()), default=0)
    if type(kind) is _Items:
        return 1 + _depth_of(kind.tree)
    return 1 if kind in (_LIST, _EMPTY_LIST) else 0


def _size_of(kind: Any) -> int:
    """The fields of the objects of ``kind``, all levels together."""
    if isinstance(kind, dict):
        return len(kind) + sum(map(_size_of, kind.values()))
    if type(kind) is _Items:
        return _size_of(kind.tree)
    return 0


def _typed(kind: Any) -> Any:
    """The msgspec type of a learned field of ``kind`` (a _Sub for an object, a _ListOf for
    a list of objects)."""
    if isinstance(kind, dict):
        return _Sub(kind)
    if type(kind) is _Items:
        return _ListOf(kind.tree)
    if kind in (_LIST, _EMPTY_LIST):
        return list[_ANY_SCALAR] | _ANY_SCALAR
    return _ANY_SCALAR


class _ListOf:
    """The msgspec type of a field holding lists of objects, or null (``type``), and the
    _Sub of the objects (each optional, as in an object absent from a record)."""

    __slots__ = ("sub", "type")

    empty = _NEVER  # (an absent list is UNSET)

    def __init__(self, tree: dict[str, Any]) -> None:
        self.sub = _Sub(tree)
        self.type: Any = list[self.sub.type] | None  # type: ignore[name-defined]


def _listed_keys(lists: list[tuple[Callable[[Any], Any], _Sub]], objects: list[Any]) -> int:
    """The keys in the lists of objects (``lists``: getter, the objects' _Sub) that
    ``objects`` hold, at every level."""
    count = 0
    for get, sub in lists:
        held = [v for v in map(get, objects) if type(v) is list]
        if held:
            count += sub.keys(list(chain.from_iterable(held)))
    return count


class _Fields:
    """The fields of a Struct read with (``_Shape``: a record's; ``_Sub``: an object's),
    each a (JSON name, its type, whether required): a type that is a _Sub is a learned object
    field (absent, it reads as the _Sub's ``empty``), a _ListOf a learned field of lists of
    objects; and what counting the keys the Structs hold, at every level, needs. Attribute
    names are ours (``f0``, ``f1``...: a record's keys need not be identifiers); the JSON
    names are renamed onto them."""

    __slots__ = (
        "attrs",
        "fields",
        "listed",
        "lists",
        "nested",
        "optional",
        "optional_count",
        "subs",
        "width",
    )

    def _lay_out(self, items: list[tuple[str, Any, bool]]) -> list[Any]:
        """Set up the fields of ``items``; their definitions, for ``msgspec.defstruct``."""
        fields: list[Any] = []
        self.attrs: dict[str, str] = {}  # JSON name -> attribute
        self.subs: dict[str, _Sub] = {}  # JSON name -> its objects' _Sub
        # (getter, its _Sub, whether required) of the object fields
        self.nested: list[tuple[Callable[[Any], Any], _Sub, bool]] = []
        self.listed: dict[str, _ListOf] = {}  # JSON name -> its lists' _ListOf
        self.lists: list[tuple[Callable[[Any], Any], _Sub]] = []  # (getter, the objects' _Sub)
        optional = []
        for i, (name, kind, needed) in enumerate(items):
            attr = f"f{i}"
            self.attrs[name] = attr
            if type(kind) is _Sub:
                self.subs[name] = kind
                self.nested.append((attrgetter(attr), kind, needed))
                typed = kind.field_type
                fields.append((attr, typed) if needed else (attr, typed, kind.empty))
                continue
            if type(kind) is _ListOf:
                self.listed[name] = kind
                self.lists.append((attrgetter(attr), kind.sub))
                kind = kind.type
            if needed:
                fields.append((attr, kind))
            else:
                optional.append(attr)
                fields.append((attr, kind | msgspec.UnsetType, _UNSET))
        # JSON name -> its getter on a Struct
        self.fields: dict[str, Callable[[Any], Any]] = {
            name: attrgetter(attr) for name, attr in self.attrs.items()
        }
        self.width = len(items)  # fields a Struct holds, the absent ones aside
        # the optional fields of a Struct at once (a tuple of them; one field: the value)
        self.optional: Callable[[Any], Any] | None = attrgetter(*optional) if optional else None
        self.optional_count = len(optional)
        return fields

    def keys(self, objects: list[Any]) -> int:
        """The keys ``objects`` (Structs of these fields, ``empty`` ones among them) hold,
        at every level."""
        count = self.width * len(objects) - _absent(self.optional, self.optional_count, objects)
        if self.lists:
            count += _listed_keys(self.lists, objects)
        return count + _nested_keys(self.nested, objects)


class _Sub(_Fields):
    """A Struct of the nested objects of one learned field: a field for each key seen there
    (``tree``: their kinds), each optional. An object absent from a record reads as ``empty``
    (that Struct with every field absent, shared), so that a path through it reads on in C
    (``attrgetter``) to an absent value; a key whose value is ``empty`` itself was not in the
    record. ``held`` (the fixed Struct's, see FrameReader; None: none): the part of ``tree``
    that every object holds, required at every level it names, the rest optional as above;
    the object itself is then never absent (no ``empty``). Objects all of whose fields are
    held, at every level, hold ``total`` keys each: nothing to count (else ``total`` is -1).
    A ``_NullableTree`` (``nullable``): the field holds such an object or null
    (``field_type``); a path through a null reads on as through an absent object."""

    __slots__ = ("empty", "field_type", "nullable", "total", "tree", "type")

    empty: Any
    total: int

    def __init__(self, tree: dict[str, Any], held: dict[str, Any] | None = None) -> None:
        self.tree = tree
        items = []
        for name, kind in tree.items():
            needed = held is not None and name in held
            if isinstance(kind, dict):
                typed = _Sub(kind, held[name] if held is not None and needed else None)
            else:
                typed = _typed(kind)
            items.append((name, typed, needed))
        fields = self._lay_out(items)
        self.type: Any = msgspec.defstruct(
            "Object",
            fields,
            rename={attr: name for name, attr in self.attrs.items()},
            kw_only=True,
            gc=False,
            frozen=True,  # (msgspec takes a shared default only of a frozen Struct)
            forbid_unknown_fields=True,
        )
        # (a required object is never absent: nothing is its empty one)
        self.empty = _NEVER if held is not None else self.type()
        self.nullable = type(tree) is _NullableTree
        self.field_type: Any = self.type | None if self.nullable else self.type
        # every field held, at every level: as many keys in each object
        fixed = (
            held is not None
            and not self.nullable
            and not self.optional_count
            and not self.lists
            and all(needed and sub.total >= 0 for _, sub, needed in self.nested)
        )
        self.total = self.width + sum(sub.total for _, sub, _ in self.nested) if fixed else -1

    def keys(self, objects: list[Any]) -> int:
        if self.total >= 0:
            return self.total * len(objects)
        return _Fields.keys(self, objects)

    def held(self, objects: list[Any]) -> dict[str, Any]:
        """The part of ``tree`` that every one of ``objects`` (none ``empty``) holds."""
        return _held(self.fields, self.subs, objects, self.tree)

    def plain(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, attr in self.attrs.items():
            value = getattr(obj, attr)
            sub = self.subs.get(name) or self.listed.get(name)
            if value is _UNSET or (sub is not None and value is sub.empty):
                continue
            out[name] = _plain(value, sub)
        return out


def _nested_keys(nested: list[tuple[Callable[[Any], Any], _Sub, bool]], objects: list[Any]) -> int:
    """The keys in the objects (``nested``: getter, _Sub, whether required) that ``objects``
    hold, at every level (an absent object: none; a null: none in it)."""
    count = 0
    for get, sub, needed in nested:
        if sub.total >= 0:  # (required: never absent, nothing in it to count)
            count += sub.total * len(objects)
            continue
        inner = list(map(get, objects))
        if not needed:
            count -= _count_is(inner, sub.empty)
        if sub.nullable and None in inner:
            inner = [o for o in inner if o is not None]
        count += sub.keys(inner)
    return count


def _held(
    getters: dict[str, Callable[[Any], Any]],
    subs: dict[str, _Sub],
    objects: list[Any],
    kinds: dict[str, Any] | None,
) -> dict[str, Any]:
    """The fields (``getters``) every one of ``objects`` holds: of a value its kind (in
    ``kinds``; None without), of an object (``subs``) what every one of its objects holds."""
    out: dict[str, Any] = {}
    for name, get in getters.items():
        col = list(map(get, objects))
        sub = subs.get(name)
        if sub is None:
            if _UNSET not in col:
                out[name] = None if kinds is None else kinds[name]
        elif not _count_is(col, sub.empty):
            if sub.nullable and None in col:
                col = [o for o in col if o is not None]
            # (null in every record: nothing in it held)
            out[name] = sub.held(col) if col else {}
    return out


class _Shape(_Fields):
    """A Struct of a binding's records and what reading a batch with it needs."""

    __slots__ = ("decode", "held")

    def __init__(self, specs: list[tuple[str, Any, bool]]) -> None:
        fields = self._lay_out(specs)
        struct = msgspec.defstruct(
            "Record",
            fields,
            rename={attr: name for name, attr in self.attrs.items()},
            kw_only=True,
            gc=False,
            forbid_unknown_fields=True,
        )
        self.decode = msgspec.json.Decoder(struct).decode
        # the required fields: msgspec refuses a record without one, so none reads UNSET
        self.held = frozenset(name for name, _, needed in specs if needed)


_NONE = type(None)
_SCALAR_TYPES = (_NONE, bool, int, float, str)
_SCALARS = frozenset(_SCALAR_TYPES)


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

    def columns(
        self, source: Callable[[str], list[Any]], n: int, renamed: frozenset[str]
    ) -> dict[str, list[Any]] | None:
        """The column of each mapped field (None where a record has none), checked as the
        decoder checks it; None if a record is one the decoder would refuse or coerce.
        ``renamed``: the fields of ``renamed`` whose key the Struct read typed as the field
        (not those whose path may also run through a learned object)."""
        out: dict[str, list[Any]] = {}
        for rule in self.rules:
            if rule.name in renamed:
                out[rule.name] = source(rule.paths[0])  # checked by msgspec
                continue
            col = _first_present([source(p) for p in rule.paths], n)
            if not set(map(type, col)) <= _SCALARS:
                return None  # a path found an object or a list: a value, not a column's
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
        # "timestamp" is read from the column by _times (text or numbers); another timestamp
        # field is not checked by the decoder
        if spec.name == "timestamp" and not set(map(type, col)) <= {str, int, float}:
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

    Two Structs, each with a field for every contract field and every other field seen: one
    with every field optional (the absent ones UNSET), and one that requires, at every
    level, the fields every record of the last batch read with the first held (their keys
    need no count: ~140 ns a record less where all are held; a field that a few records
    carry, an error message, is counted alone). A batch is read with the second while its
    records fit it; once one does not, it and the next 8 are read with the first, the last
    of them reshaping the second."""

    def __init__(
        self,
        contract: Contract,
        max_record_bytes: int,
        mapping: FieldMapping | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.contract = contract
        self.max_record_bytes = max_record_bytes
        self.max_depth = max_depth
        self._mapped = None if mapping is None else _Mapped(contract, mapping)
        # objects and lists are learned where their depth fits and every path of the
        # mapping reaches a value through objects alone (a numeric segment may index a list)
        paths = [] if mapping is None else [p for rule in mapping.rules for p in rule.paths]
        self._nested = max_depth >= 2 and not any(
            part.isdecimal() for path in paths for part in path.split(".")
        )
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
        # what the fields not typed by the contract were seen to hold (_kind_of), by name
        self._kinds: dict[str, Any] = {}
        # the names the Structs read as learnt (the others are typed by the contract)
        self._learnable: frozenset[str] = frozenset()
        self._specs: list[tuple[str, Any, bool]] = []
        self._renamed: frozenset[str] = frozenset()  # _Mapped.renamed fields in force
        # whether event times were seen as numbers (epoch seconds to nanoseconds): until
        # then they are typed as text, which msgspec reads faster than a union
        self._epoch_times = False
        # the end of msgspec's error for a number where the event time's text is due
        self._time_at: tuple[str, ...] = ()
        self._unlearnt = 0  # batches in a row that _learn learnt nothing from
        self._any: _Shape | None = None  # every field, the optional ones UNSET when absent
        self._fixed: _Shape | None = None  # the fields every record held, required
        # those fields (of an object, those its objects held, by name; of a value, None)
        self._always: dict[str, Any] | None = None
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
        # orjson reads an integer beyond 64 bits as a float or not at all: a number field
        # holding one is left to the decoder
        number = Annotated[float, msgspec.Meta(gt=-(2.0**63), lt=2.0**63)]
        scalar = {"string": str, "bool": bool, "int": _INT64, "number": number}
        nonempty = Annotated[str, msgspec.Meta(min_length=1)]
        required = set(self.contract.required)
        kinds = self._kinds
        time_at: list[str] = []  # (see _time_at)

        def typed(key: str, f: FieldSpec) -> tuple[str, Any, bool]:
            """Record key ``key`` typed as the decoder takes contract field ``f``."""
            kind: Any = Literal[tuple(f.enum)] if f.enum else scalar.get(f.type, str)
            if f.name == "timestamp":
                time_at.append(f"- at `$.{key}`")
            epochs = f.name == "timestamp" and self._epoch_times
            if epochs:
                kind = str | _INT64 | float  # an event time: text, or epoch seconds to ns
            if f.name in required:
                if kind is str:
                    kind = nonempty  # the decoder refuses a required field that is ""
                elif epochs:
                    kind = nonempty | _INT64 | float
                return (key, kind, True)
            return (key, kind | None, False)  # null: as absent

        learnable: set[str] = set()

        def learned(name: str) -> tuple[str, Any, bool]:
            """A key no contract field types: what it was seen to hold."""
            learnable.add(name)
            return (name, _typed(kinds.get(name, _SCALAR)), False)

        specs: list[tuple[str, Any, bool]] = []  # (name, type, required)
        mapped = self._mapped
        for f in self.contract.fields.values():
            if mapped is not None and f.name in mapped.mapped:
                # a rule computes the field: the record's key of its name is dropped
                specs.append(learned(f.name))
            else:
                specs.append(typed(f.name, f))
        renamed: list[str] = []
        if mapped is not None:
            # a key only renamed onto a field: typed as the field (see _Mapped.renamed),
            # unless its path may run through an object seen: then a rule takes what it finds
            for key, name in mapped.renamed:
                if isinstance(kinds.get(key.split(".", 1)[0]), dict) and "." in key:
                    continue
                specs.append(typed(key, self.contract.fields[name]))
                renamed.append(name)
            # the mapping's other source keys, and the fields it computes that are not the
            # contract's: a rule takes what it finds
            named = {name for name, _, _ in specs}
            for name in chain(mapped.sources, sorted(mapped.mapped)):
                if name not in named:
                    named.add(name)
                    specs.append(learned(name))
        self._renamed = frozenset(renamed)
        self._time_at = tuple(time_at)
        specs += [learned(name) for name in self._extras]
        self._learnable = frozenset(learnable)
        self._specs = specs
        self._any = _Shape(specs)
        self._fixed = None
        if self._always is not None:
            # (what each record held is the same, whatever else was learnt since)
            self._fixed = self._fixed_shape()

    def _read(self, values: Sequence[bytes | None]) -> RecordFrame | None:
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
        shape, records = read
        # Keys: no key repeats when the keys written (each written once) are the fields read
        if _keys_written(joined) != shape.keys(records):
            return None
        fields = shape.fields
        mapped = self._mapped
        if mapped is None:
            columns = {"timestamp": list(map(fields["timestamp"], records))}
            derived: tuple[str, ...] = ()
        else:

            def source(name: str) -> list[Any]:
                routes = _routes(shape, name)
                if not routes:  # the Struct read with holds no such field: no record has it
                    return [None] * len(records)
                (get, *deeper), empty = routes[0]
                if len(routes) == 1 and not deeper and empty is None:  # the key itself
                    if name in shape.held:
                        return list(map(get, records))
                    col = _present(get, records)
                else:
                    col = _first_found([_found(*route, records) for route in routes])
                return col

            got = mapped.columns(source, len(records), self._renamed)
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
        complex_fields: dict[str, _Sub | _ListOf | None] = {
            name: shape.subs.get(name) or shape.listed.get(name)
            for name in fields
            if name in shape.subs
            or name in shape.listed
            or self._kinds.get(name) in (_LIST, _EMPTY_LIST)
        }
        return RecordFrame(records, fields, columns, ts, shape.held, derived, complex_fields)

    def _parse(self, values: Sequence[bytes]) -> tuple[_Shape, list[Any]] | None:
        """(the Struct read with, a Struct a record), learning what the records hold beyond
        the contract once; None if a record is not one a frame can hold."""
        fixed = self._fixed
        reshape = fixed is None
        if fixed is not None and self._fixed_rest == 0:
            try:
                return fixed, list(map(fixed.decode, values))
            except _ERRORS:
                self._fixed_rest = 8
        elif self._fixed_rest:
            self._fixed_rest -= 1
            reshape = self._fixed_rest == 0  # the fixed Struct is tried again next
        for _ in range(3):
            shape = self._any
            assert shape is not None
            try:
                records = list(map(shape.decode, values))
                self._unlearnt = 0
                break
            except _ERRORS as exc:
                # a field not seen before, or an object or a list where none was: learnt
                # once; an event time written as a number: typed to take one, once
                message = str(exc)
                if (
                    not self._epoch_times
                    and _NUMBER.search(message)
                    and message.endswith(self._time_at)
                ):
                    self._epoch_times = True
                    self._prepare()
                elif not _LEARNABLE.search(message) or not self._learn(values):
                    return None
        else:
            return None
        if reshape:
            self._learn_always(shape, records)
        return shape, records

    def _learn_always(self, shape: _Shape, records: list[Any]) -> None:
        """Make the fields each of ``records`` holds the fixed Struct's (of an object, those
        each of its objects holds)."""
        held = _held(shape.fields, shape.subs, records, None)
        if held != self._always:
            self._always = held
            self._fixed = self._fixed_shape()

    def _fixed_shape(self) -> _Shape | None:
        """The Struct of the fields each record of a batch held (``_always``) required, at
        every level, the others optional, as in ``_any``."""
        always = self._always
        if always is None:
            return None
        return _Shape(
            [
                (n, k, False)
                if n not in always
                else (n, k if always[n] is None else _Sub(k.tree, always[n]), True)
                for n, k, _ in self._specs
            ]
        )

    def _learn(self, values: Sequence[bytes]) -> bool:
        """Learn what ``values``' objects hold beyond the contract: the other fields (up to
        MAX_EXTRA_FIELDS in all), and the objects and lists seen (up to MAX_NESTED_FIELDS
        fields in them, within max_depth); whether anything was learnt. Once
        ``_UNLEARNT`` batches in a row, none read, taught nothing (ever new names, a key
        that holds an object in some records and a value in others), one in 64 is looked
        at until a batch is read: each costs a parse of its records before the per-event
        decode that judges it."""
        self._unlearnt += 1
        if self._unlearnt > _UNLEARNT and self._unlearnt % 64:
            return False  # (a batch in 64 is looked at still: a stream may settle)
        learnable = set(self._learnable)
        typed = {name for name, _, _ in self._specs} - learnable
        kinds = dict(self._kinds)
        extras = list(self._extras)
        for value in values:
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if type(record) is not dict:
                continue
            for name, field in record.items():
                if name in typed:
                    continue  # a contract field: its type is the decoder's
                if name not in learnable:
                    if len(extras) >= MAX_EXTRA_FIELDS or _UNNAMEABLE.search(name):
                        continue  # (a stream of ever new names: judged per event from here)
                    extras.append(name)
                    learnable.add(name)
                # (a record no Struct can hold with the others, or nested beyond max_depth,
                # is left out: a batch holding it is judged per event)
                seen = kinds.get(name)
                kind = _kind_of(seen, field, self._nested)
                if kind is not seen and kind is not None and 1 + _depth_of(kind) <= self.max_depth:
                    kinds[name] = kind
        if sum(map(_size_of, kinds.values())) > MAX_NESTED_FIELDS:
            return False
        if extras == self._extras and kinds == self._kinds:
            return False
        self._unlearnt = 0
        self._extras = extras
        self._kinds = kinds
        self._prepare()
        return True


def _keys_written(joined: bytes) -> int:
    """The keys written in ``joined``: JSON objects (each one msgspec read) joined by commas.

    A key is a string followed by a colon, with JSON's whitespace at most between; nothing
    else is: a string value is followed by a comma or a bracket, and a quote inside a string
    is escaped (an odd run of backslashes before it). So the keys are the colons whose byte
    before, whitespace aside, is a quote that no odd run of backslashes escapes. A colon
    within a string (a time, a URL, ``\\":`` in a JSON text held as a string, ``a : b`` in a
    message) is no key. Nearly every batch has no whitespace before a colon and no backslash
    before a key's quote: then one pass over the batch and a few over its colons."""
    import numpy as np

    raw = np.frombuffer(joined, dtype=np.uint8)
    at = np.flatnonzero(raw == _COLON) - 1  # (no object begins with a colon: at >= 0)
    before = raw[at]
    if bool((before <= 32).any()):  # whitespace (a control character is none in JSON text)
        # the last byte before each colon that is no whitespace
        solid = np.flatnonzero(raw > 32)
        at = solid[np.searchsorted(solid, at + 1) - 1]
        before = raw[at]
    quoted = before == _QUOTE
    count = int(np.count_nonzero(quoted))
    if b"\\" not in joined:  # (memchr: no backslash, no escape)
        return count
    quotes = at[quoted]
    escapable = quotes[raw[quotes - 1] == _BACKSLASH]
    if len(escapable):
        # the run of backslashes before each: from the last byte before it that is none
        other = np.flatnonzero(raw != _BACKSLASH)
        starts = other[np.searchsorted(other, escapable) - 1]
        count -= int(np.count_nonzero((escapable - starts - 1) % 2))
    return count


# the errors of a record holding what the Structs do not yet take (see _learn)
_LEARNABLE = re.compile(r"unknown field|got `(object|array|null)`")
_NUMBER = re.compile(r"Expected `str`, got `(int|float)`")
_UNLEARNT = 16


def _routes(shape: _Shape, path: str) -> list[tuple[tuple[Callable[[Any], Any], ...], Any]]:
    """The places a mapping's ``path`` may find its value in a record read with ``shape``,
    in the order ``compile_path`` looks: the whole path as one key, then at each object the
    rest of the path as one key (the last: its last segment). Each is (the getters of its
    steps, the empty object it reads where the record has no such key, or None where that is
    UNSET): an absent object reads as its empty one, so a path through it reads on in C, a
    ``map`` a step (40 ns a record of two steps against 62 for ``attrgetter("a.b")``). A path
    through a list or a scalar finds nothing (there is no numeric segment:
    ``FrameReader._nested``); through a null, nothing: a step reads it as ``_BLANK``, which
    reads as itself whatever is read of it."""
    routes: list[tuple[tuple[Callable[[Any], Any], ...], Any]] = []
    whole = shape.fields.get(path)
    if whole is not None:
        sub = shape.subs.get(path)
        routes.append(((whole,), None if sub is None else sub.empty))
    parts = path.split(".")
    sub = shape.subs.get(parts[0])
    if len(parts) < 2 or sub is None:
        return routes
    steps: list[Callable[[Any], Any]] = [attrgetter(shape.attrs[parts[0]])]
    for i in range(1, len(parts)):
        if sub.nullable:
            steps.append(_blank_if_null)
        key = ".".join(parts[i:])
        rest = sub.attrs.get(key)
        if rest is not None:
            inner = sub.subs.get(key)
            routes.append(((*steps, attrgetter(rest)), None if inner is None else inner.empty))
        inner = sub.subs.get(parts[i])
        if inner is None or i == len(parts) - 1:
            break
        steps.append(attrgetter(sub.attrs[parts[i]]))
        sub = inner
    return routes


class _Blank:
    """What a path reads through a null object: itself, whatever is read of it."""

    __slots__ = ()

    def __getattr__(self, name: str) -> _Blank:
        return self


_BLANK = _Blank()


def _blank_if_null(value: Any) -> Any:
    return _BLANK if value is None else value


def _found(steps: tuple[Callable[[Any], Any], ...], empty: Any, records: list[Any]) -> list[Any]:
    """What ``steps`` read of each record, UNSET where the record has no such key."""
    values: Iterable[Any] = records
    for step in steps:
        values = map(step, values)
    col = list(values)
    if empty is not None and _count_is(col, empty):
        col = [_UNSET if v is empty else v for v in col]
    if _blank_if_null in steps and _count_is(col, _BLANK):
        col = [_UNSET if v is _BLANK else v for v in col]
    return col


def _first_found(columns: list[list[Any]]) -> list[Any]:
    """A record's first value of ``columns`` that is present (a null too: compile_path stops
    at a key present with null), None where none is."""
    col = columns[-1]
    for earlier in reversed(columns[:-1]):
        if earlier.count(_UNSET) != len(earlier):
            col = [v if v is not _UNSET else w for v, w in zip(earlier, col, strict=True)]
    if _UNSET in col:
        col = [None if v is _UNSET else v for v in col]
    return col


def _times(stamps: list[Any]) -> Any:
    """Epoch seconds of event times as ``parse_timestamp`` reads them: numbers (``_epochs``)
    and texts (``_text_times``), or None if one is not read here."""
    import numpy as np

    try:
        text = "".join(stamps)
    except TypeError:  # not all texts
        pass
    else:
        return _text_times(stamps, text)
    kinds = set(map(type, stamps))
    if not kinds <= {str, int, float}:
        return None
    if str not in kinds:
        return _epochs(stamps)
    is_text = [type(v) is str for v in stamps]  # (a column of both: rare)
    epoch = np.empty(len(stamps))
    for texts, read in ((True, _text_times), (False, _epochs)):
        rows = [i for i, t in enumerate(is_text) if t is texts]
        part = read([stamps[i] for i in rows])
        if part is None:
            return None
        epoch[rows] = part
    return epoch


def _epochs(numbers: list[int | float]) -> Any:
    """``epoch_from_number`` over a column: seconds, or from 1e11 milliseconds, from 1e14
    microseconds, from 1e17 nanoseconds, each divided as there (the same IEEE division,
    an integer made a float first as ``float()`` makes it); None if one is out of range."""
    import numpy as np

    value = np.array(numbers, dtype=np.float64)
    magnitude = np.abs(value)
    value = np.where(
        magnitude >= _NS_THRESHOLD,
        value / 1e9,
        np.where(
            magnitude >= _US_THRESHOLD,
            value / 1e6,
            np.where(magnitude >= _MS_THRESHOLD, value / 1e3, value),
        ),
    )
    if not ((value >= 0) & (value <= MAX_EPOCH)).all():
        return None
    return value


def _text_times(stamps: list[str], text: str | None = None) -> Any:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM:SS`` strings with 0 or 1 to 9 fraction digits and
    a zone (``Z``, ``+HH:MM``/``-HH:MM`` or ``+HHMM``/``-HHMM``), exactly as
    ``parse_timestamp`` gives them, or None if one is written otherwise or names no real time
    from 1970 on and up to ``MAX_EPOCH``. The rows of each width are read together: Go
    (RFC3339Nano) and Java (Instant) drop a fraction's trailing zeros, so one batch of theirs
    holds several widths; nginx's ``$time_iso8601`` and Python's ``isoformat()`` write an
    offset."""
    import numpy as np

    widths = set(map(len, stamps))
    if not all(20 <= width <= 35 for width in widths):
        return None
    if text is None:
        text = "".join(stamps)
    if not text.isascii():
        return None
    if len(widths) == 1:
        width = widths.pop()
        chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(len(stamps), width)
        return _times_of_width(chars)
    lengths = np.fromiter(map(len, stamps), dtype=np.intp, count=len(stamps))
    epoch = np.empty(len(stamps))
    for width in widths:
        rows = np.flatnonzero(lengths == width)
        text = "".join(map(stamps.__getitem__, rows.tolist()))
        chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(len(rows), width)
        part = _times_of_width(chars)
        if part is None:
            return None
        epoch[rows] = part
    return epoch


def _times_of_width(b: np.ndarray[Any, Any]) -> Any:
    """``_times`` over the characters of stamps of one width, a row a time, each row read
    by its zone (``Z``, ``±HH:MM``, ``±HHMM``: one width may hold several, a fraction's
    digits making up the difference)."""
    import numpy as np

    n, width = b.shape
    zulu = b[:, -1] == _ZULU
    if zulu.all():
        return times_of(b)
    signed = (b[:, -6] == _PLUS) | (b[:, -6] == _MINUS)
    colon = signed & (b[:, -3] == _COLON)
    plain = ~zulu & ~colon & ((b[:, -5] == _PLUS) | (b[:, -5] == _MINUS))
    if not (zulu | colon | plain).all():
        return None
    epoch = np.empty(n)
    for zone, rows in ((1, zulu), (6, colon), (5, plain)):
        at = np.flatnonzero(rows)
        if len(at):
            part = times_of(b[at], zone)
            if part is None:
                return None
            epoch[at] = part
    return epoch


def times_of(b: np.ndarray[Any, Any], zone: int = 1) -> Any:
    """``_times`` over the characters of one width and zone (its length: 1, ``Z``; 6,
    ``±HH:MM``; 5, ``±HHMM``), a row a time (a byte matrix), read column-wise. Exact: the
    whole seconds are whole numbers, and a fraction ``digits / 10**k`` is the correctly
    rounded quotient of two exact doubles, the very float ``float(".ddd")`` gives;
    parse_timestamp adds it to the whole seconds as is done here."""
    import numpy as np

    n, width = b.shape
    places = width - 20 - zone  # fraction digits (-1: none)
    if places == 0 or places > 9:
        return None
    layout = _layouts.get((width, zone))
    if layout is None:
        layout = _layouts[width, zone] = _layout(width, zone)
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
    if zone > 1:
        # the offset's digits are the last four: HHMM, east of UTC ahead of it
        offset_hours = d[:, -4] * 10 + d[:, -3]
        if not ((offset_hours <= 23).all() and (d[:, -2] <= 5).all()):
            return None
        east = np.where(b[:, width - zone] == _PLUS, 1, -1)
        seconds = seconds - east * (offset_hours * 3600 + (d[:, -2] * 10 + d[:, -1]) * 60)
    if (b[:, :10] == b[0, :10]).all():
        # one date in the batch (nearly always): its days once, by the calendar
        day = _days(int(d[0, 0:4] @ _YEAR), int(d[0, 4:6] @ _TWO), int(d[0, 6:8] @ _TWO))
        if day is None:
            return None
        whole = seconds + day * 86400
    else:
        days = _days_of(d)
        if days is None:
            return None
        whole = seconds + days * 86400
    if zone > 1 and not ((whole >= 0).all() and (whole <= MAX_EPOCH).all()):
        return None  # (an offset may take a time before 1970 or past MAX_EPOCH)
    epoch = whole.astype(np.float64)
    if places > 0:
        if epoch.max() >= MAX_EPOCH:
            return None  # a fraction of the last second in range is past it (parse_timestamp)
        # (".000Z" too: parse_timestamp reads it as the whole seconds, the same float)
        scale = 10 ** np.arange(places - 1, -1, -1, dtype=np.int64)
        epoch += (d[:, 14 : 14 + places] @ scale).astype(np.float64) / float(10**places)
    return epoch


_MINUTE_SECOND = [600, 60, 10, 1]
_YEAR = [1000, 100, 10, 1]
_TWO = [10, 1]
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_ZULU, _PLUS, _MINUS = ord("Z"), ord("+"), ord("-")
_layouts: dict[tuple[int, int], tuple[list[int], Any, list[int]]] = {}


def _layout(width: int, zone: int) -> tuple[list[int], Any, list[int]]:
    """For stamps of ``width`` and zone length ``zone``: where the fixed characters are,
    what they are, and where the digits are (the date and time's, the fraction's, then the
    offset's)."""
    import numpy as np

    fixed_at = list(_SEPARATOR_AT)
    fixed = list(_SEPARATORS)
    digit_at = list(_DIGIT_AT)
    z = width - zone  # where the zone begins
    if z > 19:
        fixed_at.append(19)
        fixed.append(ord("."))
        digit_at += range(20, z)
    if zone == 1:
        fixed_at.append(z)
        fixed.append(_ZULU)
    elif zone == 6:  # ±HH:MM (the sign is checked by the caller)
        fixed_at.append(z + 3)
        fixed.append(_COLON)
        digit_at += [z + 1, z + 2, z + 4, z + 5]
    else:  # ±HHMM
        digit_at += [z + 1, z + 2, z + 3, z + 4]
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
    reader = FrameReader(contract, max_record_bytes, mapping, max_depth)
    return reader if reader.usable else None
