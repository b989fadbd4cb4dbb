"""Rule files: YAML rules with a type, read into RuleSpecs (types.py).

A file holds one rule (a mapping) or a list of them; a folder is every *.yaml/*.yml in it.
Every problem is a ConfigError naming the file, the line, the rule and what is wrong; all of
a file's problems are reported, and a rule in error is left out (``load_rule_files``)::

    name: api-5xx-burst            # the detector kind is rule:api-5xx-burst
    family: api-access-logs        # any family, built-in or from families_dir/contracts
    type: frequency                # see RULE_PARAMS for each type's parameters
    filter:                        # optional; see ``parse_filter``
      status_code: {gte: 500}
      method: [GET, POST]
    key: [ip_address]              # group by (and co-locate by) these fields
    window: 5m                     # 300, "300s", "5m", "2h", "1d"
    threshold: 20
    severity: high                 # info, low, medium, high, critical
    title: "{count} server errors for {ip_address}"
    body: "..."
    labels: {team: web}
    annotations: {runbook: "https://runbooks/api-5xx"}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..alerts import SEVERITIES
from ..errors import ConfigError
from .predicates import TRUE, All, Any_, Leaf, Node, Not
from .types import RULE_TYPES, RuleSpec, Template

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# type -> {parameter: (kind, default)}; kind: "duration", "int", "number", "field", a tuple
# of choices, or "bool". A default of None means required (or optional where said).
_WINDOW = ("duration", None)
RULE_PARAMS: dict[str, dict[str, tuple[Any, Any]]] = {
    "any": {"realert": ("duration", 0.0)},
    "frequency": {"window": _WINDOW, "threshold": ("int", None), "realert": ("duration", -1)},
    "cardinality": {
        "window": _WINDOW,
        "threshold": ("int", None),
        "field": ("field", None),
        "realert": ("duration", -1),
    },
    "new_term": {
        "field": ("field", None),
        "lookback": ("duration", 30 * 86400.0),
        "first_value_alerts": ("bool", False),
    },
    "change": {"field": ("field", None), "window": ("duration", 0.0)},
    "flatline": {"window": _WINDOW, "threshold": ("int", 1)},
    "spike": {
        "window": _WINDOW,
        "ratio": ("number", 3.0),
        "direction": (("up", "down", "both"), "both"),
        "min_reference": ("int", 1),
        "min_current": ("int", 1),
    },
    "metric_aggregation": {
        "window": _WINDOW,
        "field": ("field", None),
        "metric": (("avg", "min", "max", "sum", "count"), "avg"),
        "max_threshold": ("number", "optional"),
        "min_threshold": ("number", "optional"),
    },
}
_COMMON = {
    "name",
    "family",
    "type",
    "filter",
    "key",
    "severity",
    "title",
    "body",
    "labels",
    "annotations",
    "description",
    "enabled",
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> float:
    """300, 300.5, "300s", "5m", "2h", "1d", "1w" -> seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(value)
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(value)
    return float(m.group(1)) * _UNITS[m.group(2)]


# -- the filter syntax ----------------------------------------------------------------------

_OPS = {
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "regex",
    "exists",
    "contains",
    "startswith",
    "endswith",
}


def parse_filter(node: Any, where: str = "filter") -> Node:
    """The ``filter:`` syntax, compiled into a condition tree (predicates.py)::

        filter:                          # a mapping: every entry must hold
          status_code: 500               # equal (a list: one of them)
          method: [POST, PUT]
          endpoint: {startswith: /admin, not_in: [/admin/health]}   # every operator holds
          response_time_ms: {gte: 1000}  # gt, gte, lt, lte: numbers
          user_agent: {regex: '(?i)sqlmap|nikto'}   # re.search
          country: {exists: false}       # present (true) or absent (false)
          any: [{status_code: 401}, {status_code: 403}]   # one of them
          not: {ip_address: {startswith: "10."}}
        # a list of mappings: each must hold

    Operators: eq, ne, in, not_in, gt, gte, lt, lte, regex, exists, contains, startswith,
    endswith. Strings compare exactly (case matters)."""
    if node is None:
        return TRUE
    if isinstance(node, list):
        return All(tuple(parse_filter(item, f"{where}[{i}]") for i, item in enumerate(node)))
    if not isinstance(node, dict):
        raise ValueError(f"{where} must be a mapping of field: condition, or a list of them")
    items: list[Node] = []
    for name, spec in node.items():
        name = str(name)
        if name == "any":
            if not isinstance(spec, list) or not spec:
                raise ValueError(f"{where}.any must be a list of conditions")
            items.append(
                Any_(tuple(parse_filter(s, f"{where}.any[{i}]") for i, s in enumerate(spec)))
            )
        elif name == "all":
            items.append(parse_filter(spec if isinstance(spec, list) else [spec], f"{where}.all"))
        elif name == "not":
            items.append(Not(parse_filter(spec, f"{where}.not")))
        else:
            items.append(_field_condition(name, spec, f"{where}.{name}"))
    return items[0] if len(items) == 1 else All(tuple(items))


def _field_condition(name: str, spec: Any, where: str) -> Node:
    if isinstance(spec, list):
        return Leaf(name, "in", _hashables(spec, where))
    if not isinstance(spec, dict):
        return Leaf(name, "eq", spec)
    unknown = set(map(str, spec)) - _OPS
    if unknown:
        raise ValueError(
            f"{where}: unknown operator {', '.join(sorted(unknown))} (known: "
            f"{', '.join(sorted(_OPS))})"
        )
    if not spec:
        raise ValueError(f"{where}: no condition")
    out: list[Node] = []
    for op, value in spec.items():
        out.append(_one(name, str(op), value, f"{where}.{op}"))
    return out[0] if len(out) == 1 else All(tuple(out))


def _one(name: str, op: str, value: Any, where: str) -> Node:
    if op in ("eq", "ne"):
        return Leaf(name, op, value)
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list")
        leaf = Leaf(name, "in", _hashables(value, where))
        return leaf if op == "in" else Not(leaf)
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return Leaf(name, op, value)
    if op == "regex":
        try:
            return Leaf(name, "regex", re.compile(str(value)))
        except re.error as exc:
            raise ValueError(f"{where}: not a valid regular expression: {exc}") from None
    if op == "exists":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false")
        return Leaf(name, "exists", value)
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string")
    return Leaf(
        name,
        {"contains": "contains", "startswith": "startswith", "endswith": "endswith"}[op],
        value,
        cased=True,
    )


def _hashables(values: list[Any], where: str) -> frozenset[Any]:
    for v in values:
        if isinstance(v, dict | list):
            raise ValueError(f"{where}: list items must be plain values")
    return frozenset(values)


# -- one rule -------------------------------------------------------------------------------


def parse_rule(doc: Any, file: str, families: set[str]) -> RuleSpec:
    """One rule mapping -> RuleSpec; ValueError with what is wrong (no file/line)."""
    if not isinstance(doc, dict):
        raise ValueError("a rule must be a mapping")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError("'name' is required: letters, digits, _ . - (at most 128)")
    rtype = doc.get("type")
    if rtype not in RULE_TYPES:
        raise ValueError(f"'type' must be one of {', '.join(RULE_TYPES)}, got {rtype!r}")
    family = doc.get("family")
    if family not in families:
        raise ValueError(f"unknown family {family!r} (known: {', '.join(sorted(families))})")
    known = _COMMON | set(RULE_PARAMS[rtype])
    unknown = sorted(set(map(str, doc)) - known)
    if unknown:
        raise ValueError(
            f"{rtype} rules have no setting {', '.join(unknown)} (known: "
            f"{', '.join(sorted(known))})"
        )
    key = doc.get("key") or []
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not all(isinstance(k, str) and k for k in key):
        raise ValueError("'key' must be a field name or a list of them")
    severity = doc.get("severity", "medium")
    if severity not in SEVERITIES:
        raise ValueError(f"'severity' must be one of {', '.join(SEVERITIES)}")
    params: dict[str, Any] = {}
    for pname, (kind, default) in RULE_PARAMS[rtype].items():
        value = doc.get(pname)
        if value is None:
            if default is None:
                raise ValueError(f"{rtype} rules need '{pname}'")
            if default != "optional":
                params[pname] = default
            continue
        params[pname] = _param(pname, kind, value)
    if (
        rtype == "metric_aggregation"
        and "max_threshold" not in params
        and "min_threshold" not in params
    ):
        raise ValueError("metric_aggregation rules need max_threshold or min_threshold")
    for pname in ("window",):
        if pname in params and params[pname] <= 0 and RULE_PARAMS[rtype][pname][1] is None:
            raise ValueError(f"'{pname}' must be more than 0")
    if params.get("realert") == -1:
        params["realert"] = params.get("window", 0.0)
    if params.get("threshold", 1) < 1:
        raise ValueError("'threshold' must be at least 1")
    if rtype == "spike" and params["ratio"] <= 1:
        raise ValueError("'ratio' must be more than 1")
    labels = _strings(doc.get("labels"), "labels")
    annotations = _strings(doc.get("annotations"), "annotations")
    for label in labels:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", label) or label in ("kind", "family"):
            raise ValueError(
                f"label {label!r}: a label name is [A-Za-z_][A-Za-z0-9_]* and not kind or family"
            )
    condition = parse_filter(doc.get("filter"))
    return RuleSpec(
        rule_id=name,
        kind=f"rule:{name}",
        family=family,
        type=rtype,
        condition=condition,
        key=tuple(key),
        params=params,
        severity=severity,
        title=Template(str(doc["title"])) if doc.get("title") else None,
        body=Template(str(doc["body"])) if doc.get("body") else None,
        labels=labels,
        annotations=annotations,
        origin=file,
        source="rules",
        display=name,
    )


def _param(name: str, kind: Any, value: Any) -> Any:
    if kind == "duration":
        try:
            return parse_duration(value)
        except ValueError:
            raise ValueError(
                f"'{name}' must be a duration (300, 30s, 5m, 2h, 1d), got {value!r}"
            ) from None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"'{name}' must be a whole number, got {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"'{name}' must be a number, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"'{name}' must be true or false")
        return value
    if kind == "field":
        if not isinstance(value, str) or not value:
            raise ValueError(f"'{name}' must be a field name")
        return value
    if value not in kind:
        raise ValueError(f"'{name}' must be one of {', '.join(kind)}, got {value!r}")
    return value


def _strings(node: Any, what: str) -> dict[str, str]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ValueError(f"'{what}' must be a mapping of names to strings")
    return {str(k): str(v) for k, v in node.items()}


# -- files and folders ----------------------------------------------------------------------


def rule_files(paths: list[str], where: str | None = None) -> list[Path]:
    out: list[Path] = []
    for value in paths:
        path = Path(value)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigError(
                f"no rule file or folder {value!r}",
                file=where,
                hint="relative paths start at the config file's folder",
            )
    return out


def load_rule_files(
    paths: list[str], families: set[str], errors: list[ConfigError], where: str | None = None
) -> list[RuleSpec]:
    """Every rule of ``paths``; each rule in error is one entry of ``errors`` (and left
    out). Names must be unique across all files."""
    from ..config import load_yaml

    specs: list[RuleSpec] = []
    seen: dict[str, str] = {}
    for path in rule_files(paths, where):
        file = str(path)
        try:
            doc = load_yaml(path.read_text(), file=file)
        except ConfigError as exc:
            errors.append(exc)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigError(f"cannot read rule file: {exc}", file=file))
            continue
        docs = doc if isinstance(doc, list) else [doc]
        for i, one in enumerate(docs):
            line = getattr(one, "line", None) or (
                doc.item_lines[i] if isinstance(doc, list) and hasattr(doc, "item_lines") else None
            )
            label = one.get("name") if isinstance(one, dict) else None
            what = f"rule {label!r}" if label else f"rule #{i + 1}"
            try:
                spec = parse_rule(one, file, families)
            except ValueError as exc:
                errors.append(
                    ConfigError(f"{what}: {exc}", file=file, line=line, hint="see docs/rules.md")
                )
                continue
            if spec.rule_id in seen:
                errors.append(
                    ConfigError(
                        f"{what}: the name is also used in {seen[spec.rule_id]}",
                        file=file,
                        line=line,
                        hint="give each rule its own name",
                    )
                )
                continue
            seen[spec.rule_id] = file
            specs.append(spec)
    return specs
