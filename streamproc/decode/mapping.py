"""Field mapping: contract field <- dotted path of the incoming record, with value maps.

Configured per topic binding, so an Elastic Common Schema record works without code::

    fields:
      timestamp: "@timestamp"
      username: user.name
      ip_address: source.ip
      success: {path: event.outcome, map: {success: true, failure: false}}

A path is looked up first as a literal key (flattened ECS documents use ``"user.name"`` as one
key), then segment by segment through nested objects, where the rest of the path may again be
one literal key (falcosidekick writes ``{"output_fields": {"container.id": ...}}``, reached as
``output_fields.container.id``); a numeric segment indexes a list.
Several candidate paths may be given as a list: the first one present wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

_MISSING = object()


def compile_path(path: str) -> Callable[[dict[str, Any]], Any]:
    """A getter of ``path`` (``_MISSING`` where the record has none).

    On a flat record (no value an object or a list) only the literal key ``path`` can match:
    the walk's first step reaches a scalar or nothing, and a scalar has no segments below it.
    The column reader (frames.py) relies on this: there, a path is one source column."""
    parts = path.split(".")
    if len(parts) == 1:
        return lambda record: record.get(path, _MISSING)

    if len(parts) == 2:
        # the common nested path (ECS's user.name, source.ip): ``get``'s steps for two
        # segments, without its loop (about half the time a record)
        first, last = parts
        index = int(last) if last.isdecimal() else -1

        def get_two(record: dict[str, Any]) -> Any:
            value = record.get(path, _MISSING)
            if value is not _MISSING:
                return value
            node = record.get(first, _MISSING)
            if isinstance(node, dict):
                return node.get(last, _MISSING)
            if isinstance(node, list) and 0 <= index < len(node):
                return node[index]
            return _MISSING

        return get_two

    # the rest of the path from each segment on, as one literal key ("container.id")
    rests = [".".join(parts[i:]) for i in range(len(parts))]

    def get(record: dict[str, Any]) -> Any:
        value = record.get(path, _MISSING)
        if value is not _MISSING:
            return value
        node: Any = record
        for i, part in enumerate(parts):
            if isinstance(node, dict):
                if i and rests[i] in node:  # a flattened key below a nested object
                    return node[rests[i]]
                node = node.get(part, _MISSING)
            elif isinstance(node, list) and part.isdecimal() and int(part) < len(node):
                node = node[int(part)]
            else:
                return _MISSING
            if node is _MISSING:
                return _MISSING
        return node

    return get


@dataclass(slots=True)
class FieldRule:
    name: str
    getters: list[Callable[[dict[str, Any]], Any]]
    value_map: dict[str, Any] | None
    default: Any
    paths: tuple[str, ...] = ()  # the getters' paths, in order

    def extract(self, record: dict[str, Any]) -> Any:
        value = _MISSING
        for getter in self.getters:
            value = getter(record)
            if value is not _MISSING and value is not None:
                break
        if value is _MISSING or value is None:
            return self.default
        if self.value_map is not None:
            return self.translate(value)
        return value

    def translate(self, value: Any) -> Any:
        """``value`` (present, not None) through the value map: the entry for it as written,
        else for it lowercased (a non-string as ``str(value).lower()``), else as it is."""
        assert self.value_map is not None
        key = value if isinstance(value, str) else str(value).lower()
        if key in self.value_map:
            return self.value_map[key]
        lowered = key.lower()
        if lowered in self.value_map:
            return self.value_map[lowered]
        return value


class FieldMapping:
    """Builds a contract-shaped dict from an arbitrary record."""

    def __init__(self, spec: dict[str, Any], *, where: str = "fields") -> None:
        self.rules: list[FieldRule] = []
        self.keep_unmapped = True
        for name, rule in spec.items():
            if isinstance(rule, str | list):
                paths, value_map, default = rule, None, None
            elif isinstance(rule, dict):
                if "path" not in rule and "value" not in rule:
                    raise ConfigError(
                        f"{where}.{name} needs 'path' (a dotted path) or 'value'",
                        hint="e.g. {path: event.outcome, map: {failure: false}}",
                    )
                paths = rule.get("path", [])
                value_map = rule.get("map")
                default = rule.get("value", rule.get("default"))
                if value_map is not None and not isinstance(value_map, dict):
                    raise ConfigError(f"{where}.{name}.map must be a mapping of value: value")
                if value_map is not None:
                    value_map = {str(k): v for k, v in value_map.items()}
            else:
                raise ConfigError(f"{where}.{name} must be a dotted path or a mapping")
            if isinstance(paths, str):
                paths = [paths]
            getters = [compile_path(p) for p in paths]
            self.rules.append(FieldRule(name, getters, value_map, default, tuple(paths)))
        self.mapped = {rule.name for rule in self.rules}

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        # Contract fields that are not mapped fall through by name, so a mapping only has to
        # name the fields that differ.
        out = {k: v for k, v in record.items() if k not in self.mapped}
        for rule in self.rules:
            value = rule.extract(record)
            if value is not None:
                out[rule.name] = value
            else:
                out.pop(rule.name, None)
        return out
