"""Event contracts: the families of events streamproc understands, loaded from ``topics/*.yaml``
and, for families of your own, from the files that ``families_dir:`` or ``contracts:`` name in
the config (same format; ``config._parse_families``).

A contract names each field's type and whether it is required, the partition key, and the
default Kafka topic and MQTT topic filter. Decoders validate records against it; detectors
declare which family they read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

FIELD_TYPES = ("string", "int", "number", "bool", "timestamp")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Contract:
    family: str
    kafka_topic: str
    mqtt_topic: str
    key: tuple[str, ...]
    fields: dict[str, FieldSpec]
    description: str = ""
    sample: str | None = None
    required: tuple[str, ...] = field(default=())
    # the file a user-defined contract was read from (None: built in, under topics/)
    origin: str | None = None

    def key_of(self, data: dict[str, Any]) -> str | None:
        """The partition key of a decoded record: the first key field that is present."""
        for name in self.key:
            value = data.get(name)
            if value is not None and value != "":
                return str(value)
        return None

    def sample_path(self) -> Path | None:
        if not self.sample:
            return None
        if self.origin is not None:
            return Path(self.origin).parent / self.sample
        return Path(str(resources.files("streamproc.topics").joinpath(self.sample)))


_CONTRACT_KEYS = ("family", "description", "kafka_topic", "mqtt_topic", "key", "fields", "sample")
_FIELD_KEYS = ("type", "required", "enum", "doc")
_FAMILY_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def _line(node: Any, key: str | None = None) -> int | None:
    """The line of ``key`` in a mapping read by ``config.load_yaml`` (None for plain YAML)."""
    lines = getattr(node, "key_lines", None)
    if lines is not None and key is not None and key in lines:
        return int(lines[key])
    return getattr(node, "line", None)


def parse_contract(doc: Any, origin: str, *, builtin: bool = False) -> Contract:
    """A contract document -> Contract, or ConfigError naming ``origin`` and the line (when
    ``doc`` was read by ``config.load_yaml``). A contract that is not built in (``builtin``
    False) may not take a built-in family's name, and must declare a required timestamp
    field: every detector judges by event time."""

    def fail(what: str, node: Any = doc, key: str | None = None, hint: str | None = None) -> None:
        raise ConfigError(what, file=origin, line=_line(node, key), hint=hint)

    if not isinstance(doc, dict):
        fail("a contract must be a YAML mapping (family:, fields:, ...)")
    for name in doc:
        if name not in _CONTRACT_KEYS:
            fail(
                f"unknown contract key {name!r}",
                doc,
                str(name),
                hint=f"known keys: {', '.join(_CONTRACT_KEYS)}",
            )
    if "family" not in doc:
        fail("contract lacks 'family'", hint="name the family: family: falco")
    family = doc["family"]
    if not isinstance(family, str) or not _FAMILY_NAME.fullmatch(family):
        fail(
            f"family {family!r} is not a name of lower-case letters, digits, '.', '_', '-'",
            doc,
            "family",
        )
    if not builtin and family in builtin_contracts():
        fail(
            f"family {family!r} is a built-in family",
            doc,
            "family",
            hint="give your contract a name of its own (the built-in contract stays as is)",
        )
    specs = doc.get("fields")
    if not isinstance(specs, dict) or not specs:
        fail("contract lacks 'fields' (a mapping of field name -> {type, required})", doc, "fields")
    fields = {}
    for name, spec in specs.items():
        if not isinstance(spec, dict):
            fail(f"field {name!r} must be a mapping such as {{type: string}}", specs, str(name))
        for key in spec:
            if key not in _FIELD_KEYS:
                fail(
                    f"field {name!r}: unknown key {key!r}",
                    spec,
                    str(key),
                    hint=f"known keys: {', '.join(_FIELD_KEYS)}",
                )
        ftype = spec.get("type", "string")
        if ftype not in FIELD_TYPES:
            fail(
                f"field {name!r} has unknown type {ftype!r}",
                spec,
                "type",
                hint=f"use one of {', '.join(FIELD_TYPES)}",
            )
        enum = spec.get("enum")
        if enum is not None and (ftype != "string" or not isinstance(enum, list) or not enum):
            fail(f"field {name!r}: enum must be a non-empty list on a string field", spec, "enum")
        required = spec.get("required", False)
        if not isinstance(required, bool):
            fail(f"field {name!r}: required must be true or false", spec, "required")
        fields[str(name)] = FieldSpec(
            str(name),
            ftype,
            required,
            tuple(str(e) for e in enum) if enum else None,
            str(spec.get("doc", "")),
        )
    stamp = fields.get("timestamp")
    if stamp is None or stamp.type != "timestamp" or not stamp.required:
        fail(
            "contract lacks a required timestamp field",
            doc,
            "fields",
            hint="add  timestamp: {type: timestamp, required: true}  under fields (map your "
            "records' time field onto it in the binding's fields:)",
        )
    key = doc.get("key") or []
    if isinstance(key, str):
        key = [key]
    for name in key:
        if name not in fields:
            fail(f"key field {name!r} is not one of the contract's fields", doc, "key")
    return Contract(
        family=family,
        kafka_topic=str(doc.get("kafka_topic", family)),
        mqtt_topic=str(doc.get("mqtt_topic", f"streamproc/{family}/#")),
        key=tuple(key),
        fields=fields,
        description=str(doc.get("description") or "").strip(),
        sample=doc.get("sample"),
        required=tuple(n for n, f in fields.items() if f.required),
        origin=None if builtin else origin,
    )


@functools.cache
def builtin_contracts() -> dict[str, Contract]:
    """The six built-in families, keyed by family name."""
    out: dict[str, Contract] = {}
    root = resources.files("streamproc.topics")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            contract = parse_contract(yaml.safe_load(entry.read_text()), entry.name, builtin=True)
            out[contract.family] = contract
    return out


def get_contract(family: str, contracts: dict[str, Contract] | None = None) -> Contract:
    """The contract of ``family`` among ``contracts`` (a config's: ``Config.contracts``;
    default: the built-in ones)."""
    contracts = builtin_contracts() if contracts is None else contracts
    try:
        return contracts[family]
    except KeyError:
        raise ConfigError(
            f"unknown event family {family!r}", hint=f"use one of {', '.join(sorted(contracts))}"
        ) from None


def family_for_topic(topic: str, contracts: dict[str, Contract] | None = None) -> str | None:
    """The family whose default Kafka topic is ``topic`` (used when no binding names it)."""
    for contract in (builtin_contracts() if contracts is None else contracts).values():
        if contract.kafka_topic == topic or contract.family == topic:
            return contract.family
    return None
