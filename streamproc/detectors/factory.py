"""Build the detectors of a topic binding from the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import REGISTRY, Detector, DetectorContext, load_detector_class, run_order
from .engine import DetectorEngine

if TYPE_CHECKING:
    from ..config import Binding, Config


def build_detectors(config: Config, binding: Binding) -> list[Detector]:
    """Every built-in detector of the binding's family (unless ``enabled: false``), plus the
    custom ones the binding or the global ``detectors:`` section names, plus one for each rule
    of the family (``rules:``, ``sigma:``; rules/), in run order (each after the detectors it
    names in ``after``)."""
    names: list[str] = [kind for kind, cls in REGISTRY.items() if cls.family == binding.family]
    rule_kinds = {spec.kind for spec in config.rules.specs}
    for kind in list(config.detectors) + list(binding.detectors):
        if kind in rule_kinds:
            continue  # a rule's settings: rule_detectors reads them
        if kind.startswith(("rule:", "sigma:")):
            raise ConfigError(
                f"no rule {kind!r} is loaded",
                hint="rules come from the files of rules: and sigma: "
                "(streamproc rules check lists them)",
            )
        if kind not in names:
            names.append(kind)
    out: list[Detector] = []
    for kind in names:
        params: dict[str, Any] = config.detector_params(binding, kind)
        class_path = params.pop("class", None)
        cls = load_detector_class(class_path or kind)
        if cls.family != binding.family:
            if kind in binding.detectors or class_path:
                raise ConfigError(
                    f"detector {kind!r} reads {cls.family}, not {binding.family}",
                    hint="move it to a binding of that family",
                )
            continue  # a global default for another family's detector
        ctx = detector_context(config, binding, kind, params, cls.enabled_by_default)
        if ctx is not None:
            out.append(cls(params, ctx))
    from ..rules import rule_detectors

    out.extend(rule_detectors(config, binding))
    return run_order(out)


def detector_context(
    config: Config,
    binding: Binding,
    kind: str,
    params: dict[str, Any],
    enabled_by_default: bool = True,
) -> DetectorContext | None:
    """Where a detector of ``kind`` runs, taking ``enabled`` and ``key_cap`` out of its
    ``params``; None when the config turns it off."""
    enabled = params.pop("enabled", enabled_by_default)
    if not isinstance(enabled, bool):
        raise ConfigError(f"detector {kind!r}: enabled must be true or false")
    if not enabled:
        return None
    return DetectorContext(
        binding=binding.name,
        key_cap=int(params.pop("key_cap", 1_000_000)),
    )


def build_engine(config: Config, binding: Binding) -> DetectorEngine:
    return DetectorEngine(
        build_detectors(config, binding),
        allowed_lateness=binding.allowed_lateness,
        max_future_skew=binding.max_future_skew,
        max_time_jump=binding.max_time_jump,
        jump_confirmations=binding.jump_confirmations,
        limits=config.alert_limits,
    )
