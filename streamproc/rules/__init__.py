"""Rules without Python: rule files (files.py, types.py) and Sigma rules (sigma.py).

    config  rules: [files or folders]      sigma: [files or folders] (or a mapping, sigma.py)
       |              |                                |
       |        files.load_rule_files            sigma.load_sigma (pySigma parses)
       |              \\___________ RuleSpec ___________/   condition compiled once
       v                             |                     (predicates.py)
    factory.build_detectors -> rule_detectors(config, binding): one Detector per rule of the
                               binding's family, all judging through one BatchMatcher

A rule is then a detector like a built-in: event time, lateness, checkpoints, the key cap,
repartitioning by its ``key`` (its colocate) and delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Binding, Config
    from ..detectors.base import Detector
    from .types import RuleDetector, RuleSpec

# Every config has a RuleSet, most with no rule in it: the rule machinery (types.py,
# predicates.py, files.py; pySigma for sigma.py) is imported when a rule is loaded.


@dataclass(slots=True)
class Skipped:
    """A Sigma rule that did not load, and why (reported, never fatal)."""

    file: str
    rule: str  # the rule's id or title
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.rule}: {self.what}"


@dataclass(slots=True)
class RuleSet:
    specs: list[RuleSpec] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # loaded, with something to say

    def for_family(self, family: str) -> list[RuleSpec]:
        return [s for s in self.specs if s.family == family]


def load_rules(
    doc: dict[str, Any], file: str | None, families: set[str], errors: list[ConfigError]
) -> RuleSet:
    """The rules of a config's ``rules:`` and ``sigma:`` sections (paths already resolved
    against the config's folder). Rule-file problems go to ``errors``; Sigma rules that
    cannot run are ``skipped``."""
    out = RuleSet()
    listed = doc.get("rules")
    if listed is not None:
        if isinstance(listed, str):
            listed = [listed]
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            errors.append(
                ConfigError(
                    "'rules' must be a list of rule files or folders",
                    file=file,
                    line=getattr(listed, "line", None),
                )
            )
        else:
            from .files import load_rule_files

            try:
                out.specs.extend(load_rule_files(list(listed), families, errors, file))
            except ConfigError as exc:
                errors.append(exc)
    if doc.get("sigma") is not None:
        from .sigma import load_sigma

        try:
            load_sigma(doc["sigma"], file, families, out)
        except ConfigError as exc:
            errors.append(exc)
    kinds: dict[str, str] = {}
    for spec in out.specs:
        if spec.kind in kinds:
            errors.append(
                ConfigError(
                    f"two rules are both {spec.kind!r}: {kinds[spec.kind]} and {spec.origin}",
                    file=spec.origin,
                    hint="give each rule its own name",
                )
            )
        kinds[spec.kind] = spec.origin
    return out


def add_rules(config: Config, rules: Sequence[str] = (), sigma: Sequence[str] = ()) -> None:
    """Load more rule files and Sigma rules into ``config`` (``replay --rules/--sigma``);
    Sigma rules use the config's ``sigma.logsources``. Raises ConfigError(s) for rule-file
    errors; Sigma rules that cannot run are added to ``config.rules.skipped``."""
    from ..errors import ConfigErrors

    doc: dict[str, Any] = {}
    if rules:
        doc["rules"] = list(rules)
    if sigma:
        own = config.raw.get("sigma") if isinstance(config.raw, dict) else None
        doc["sigma"] = {
            "rules": list(sigma),
            "logsources": own.get("logsources") or [] if isinstance(own, dict) else [],
        }
    errors: list[ConfigError] = []
    more = load_rules(doc, config.file, set(config.contracts), errors)
    taken = {s.kind for s in config.rules.specs}
    for spec in more.specs:
        if spec.kind in taken:
            errors.append(
                ConfigError(f"rule {spec.kind!r} is already in the config", file=spec.origin)
            )
    if errors:
        raise ConfigErrors.of(errors)
    config.rules.specs.extend(more.specs)
    config.rules.skipped.extend(more.skipped)
    config.rules.notes.extend(more.notes)


def rule_detectors(config: Config, binding: Binding) -> list[Detector]:
    """A detector for each rule of the binding's family (``detectors: {rule:NAME: {enabled:
    false}}`` turns one off, ``key_cap`` sets its cap), all sharing one BatchMatcher."""
    from ..detectors.factory import detector_context

    specs = config.rules.for_family(binding.family)
    if not specs:
        return []
    from .predicates import BatchMatcher

    matcher = BatchMatcher([])
    out: list[Detector] = []
    for spec in specs:
        params = config.detector_params(binding, spec.kind)
        ctx = detector_context(config, binding, spec.kind, params)
        if ctx is None:
            continue
        detector = spec.detector_class()(params, ctx)
        detector.share(matcher)
        out.append(detector)
    return out


def __getattr__(name: str) -> Any:
    if name in ("RuleDetector", "RuleSpec"):
        from . import types

        return getattr(types, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RuleDetector",
    "RuleSet",
    "RuleSpec",
    "Skipped",
    "add_rules",
    "load_rules",
    "rule_detectors",
]
