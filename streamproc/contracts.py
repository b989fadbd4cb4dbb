"""Event contracts: the families of events streamproc understands, loaded from ``topics/*.yaml``.

A contract names each field's type and whether it is required, the partition key, and the
default Kafka topic and MQTT topic filter. Decoders validate records against it; detectors
declare which family they read.
"""

from __future__ import annotations

import functools
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
        return Path(str(resources.files("streamproc.topics").joinpath(self.sample)))


def _parse_contract(doc: dict[str, Any], origin: str) -> Contract:
    try:
        fields = {}
        for name, spec in (doc.get("fields") or {}).items():
            ftype = spec.get("type", "string")
            if ftype not in FIELD_TYPES:
                raise ConfigError(f"field {name!r} has unknown type {ftype!r}", file=origin,
                                  hint=f"use one of {', '.join(FIELD_TYPES)}")
            enum = spec.get("enum")
            fields[name] = FieldSpec(name, ftype, bool(spec.get("required", False)),
                                     tuple(enum) if enum else None, spec.get("doc", ""))
        key = doc.get("key") or []
        if isinstance(key, str):
            key = [key]
        return Contract(
            family=doc["family"], kafka_topic=doc.get("kafka_topic", doc["family"]),
            mqtt_topic=doc.get("mqtt_topic", f"streamproc/{doc['family']}/#"), key=tuple(key),
            fields=fields, description=(doc.get("description") or "").strip(),
            sample=doc.get("sample"),
            required=tuple(n for n, f in fields.items() if f.required),
        )
    except KeyError as exc:
        raise ConfigError(f"contract lacks {exc.args[0]!r}", file=origin) from None


@functools.cache
def builtin_contracts() -> dict[str, Contract]:
    """The six built-in families, keyed by family name."""
    out: dict[str, Contract] = {}
    root = resources.files("streamproc.topics")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            contract = _parse_contract(yaml.safe_load(entry.read_text()), entry.name)
            out[contract.family] = contract
    return out


def get_contract(family: str) -> Contract:
    contracts = builtin_contracts()
    try:
        return contracts[family]
    except KeyError:
        raise ConfigError(f"unknown event family {family!r}",
                          hint=f"use one of {', '.join(sorted(contracts))}") from None


def family_for_topic(topic: str) -> str | None:
    """The family whose default Kafka topic is ``topic`` (used when no binding names it)."""
    for contract in builtin_contracts().values():
        if contract.kafka_topic == topic or contract.family == topic:
            return contract.family
    return None
