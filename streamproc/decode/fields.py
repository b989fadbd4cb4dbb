"""Contract field checks, compiled once per contract: required fields, then types and enums.

The checks run on every record, so instead of a loop over (name, coercer, enum) tuples each
contract gets one generated function with a straight line of code per field. For auth-logs::

    def check(data):
        get = data.get
        v0 = get('timestamp')
        if v0 is None or v0 == '':
            raise Reject('missing_field', "required field 'timestamp' is missing")
        v1 = get('username')
        ...                                   # every required field, in contract order
        v = v1                                # typed fields, in contract order
        if v is not None and type(v) is not str:
            try:
                c = coerce_username(v)
            except CoercionError as exc:      # which field: the coercer cannot say
                raise CoercionError(exc.reason, "field 'username': " + exc.detail) from None
            if c is not v:
                data['username'] = c
        ...

Behaviour is the loop's, check for check: every required field is checked before any type
(so the first failure names the same dead-letter reason), a value of exactly its field's
Python type is left alone, anything else goes through the shared coercer from events.py, and
an enum value that is not in the enum as given is lowercased before it is rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..contracts import Contract
from ..events import COERCERS, CoercionError

# contract type -> the Python type a value needs no coercion in (bool is not an int here:
# type() is exact); the per-record checks, the batch decoder and the column reader share it
EXACT_TYPES: dict[str, type] = {"string": str, "bool": bool, "int": int, "number": float}
_EXACT_TYPES = {name: kind.__name__ for name, kind in EXACT_TYPES.items()}  # for generated code


class Reject(Exception):
    """A record fails a decoding check; ``reason`` is its dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def enum_value(name: str, coerce: Callable[[Any], Any], enum: tuple[str, ...], value: Any) -> Any:
    """The value of an enum field, coerced and (if need be) lowercased, or Reject."""
    coerced = coerce(value)
    if coerced not in enum:
        lowered = coerced.lower() if isinstance(coerced, str) else coerced
        if lowered not in enum:
            raise Reject(
                "invalid_value",
                f"field {name!r} is {str(coerced)[:40]!r}, expected one of {', '.join(enum)}",
            )
        coerced = lowered
    return coerced


def compile_field_checks(contract: Contract) -> Callable[[dict[str, Any]], None]:
    """One function that checks and coerces ``data`` in place for ``contract``, or Rejects."""
    # Field names come from contract files: they reach the source only through repr(), and
    # coercers and enums only as names of this namespace.
    namespace: dict[str, Any] = {
        "Reject": Reject,
        "enum_value": enum_value,
        "CoercionError": CoercionError,
    }
    lines = ["def check(data):", "    get = data.get"]
    local_of: dict[str, str] = {}
    for i, name in enumerate(contract.required):
        local_of[name] = f"v{i}"
        detail = f"required field {name!r} is missing"
        lines += [
            f"    v{i} = get({name!r})",
            f"    if v{i} is None or v{i} == '':",
            f"        raise Reject('missing_field', {detail!r})",
        ]
    for i, spec in enumerate(contract.fields.values()):
        if spec.type == "timestamp":
            continue  # parsed by the decoder itself, into Event.ts
        namespace[f"coerce{i}"] = COERCERS[spec.type]
        lines.append(
            f"    v = {local_of[spec.name]}"
            if spec.name in local_of
            else f"    v = get({spec.name!r})"
        )
        if spec.enum is None:
            lines += [
                f"    if v is not None and type(v) is not {_EXACT_TYPES[spec.type]}:",
                "        try:",
                f"            c = coerce{i}(v)",
            ]
        else:
            namespace[f"enum{i}"] = spec.enum
            # a string already in the enum as given is the common case: no call
            fast = (
                f" and not (type(v) is str and v in enum_set{i})" if spec.type == "string" else ""
            )
            namespace[f"enum_set{i}"] = frozenset(spec.enum)
            lines += [
                f"    if v is not None{fast}:",
                "        try:",
                f"            c = enum_value({spec.name!r}, coerce{i}, enum{i}, v)",
            ]
        # the coercers say what is wrong with a value; a dead letter says which field it is
        named = f"field {spec.name!r}: "
        lines += [
            "        except CoercionError as exc:",
            f"            raise CoercionError(exc.reason, {named!r} + exc.detail) from None",
            "        if c is not v:",
            f"            data[{spec.name!r}] = c",
        ]
    exec(compile("\n".join(lines), f"<field checks for {contract.family}>", "exec"), namespace)
    return namespace["check"]  # type: ignore[no-any-return]
