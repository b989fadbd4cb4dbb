"""The ``notify:`` section of the config, parsed once into typed settings.

Every knob has a default, so ``notify: {urls: [json://host/hook]}`` is a complete config.
Durations accept seconds (``30``) or a unit suffix (``500ms``, ``30s``, ``5m``, ``4h``, ``1d``).
The schema is documented in docs/notify.md; keep the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ConfigErrors

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any, *, where: str = "duration") -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"4h"``, ``"1d"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise ConfigError(
            f"{where}: expected a duration, got {value!r}", hint="write e.g. 30s, 5m, 4h"
        )
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{where}: must not be negative", hint="write e.g. 30s")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(
            f"{where}: cannot read duration {value!r}",
            hint="write a number of seconds or e.g. 500ms, 30s, 5m, 4h, 1d",
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_bool(value: Any, *, where: str) -> bool:
    """true/false, also from a string (``${NAME}`` gives one, and "false" is a true string)."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


@dataclass(slots=True)
class RetrySettings:
    initial: float = 1.0  # first backoff
    max_delay: float = 300.0  # backoff cap
    multiplier: float = 2.0
    max_attempts: int = 10
    max_age: float = 3600.0  # give up (fallback, then dead-letter) after this long


@dataclass(slots=True)
class NotifySettings:
    urls: list[Any] = field(default_factory=list)
    apprise_config: list[str] = field(default_factory=list)
    routes: list[dict[str, Any]] | None = None  # None: the default routes
    default_routes: bool = True  # append the defaults after user routes
    group_by: list[str] = field(default_factory=lambda: ["kind"])
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    rate: float = 1.0  # messages per second per channel; 0 = unlimited
    burst: int = 5
    digest_max: int = 200  # most queued messages rolled into one digest
    max_in_flight: int = 8  # per channel: threads and concurrent sends
    timeout: float = 10.0  # per send call
    retry: RetrySettings = field(default_factory=RetrySettings)
    fallback: str | None = None  # a URL, or a tag of a configured channel
    inhibit_rules: list[dict[str, Any]] | None = None  # None: the default rule
    inhibit_ttl: float = 3600.0
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    max_value_len: int = 200
    max_title_len: int = 250
    max_body_len: int = 4000
    max_group_items: int = 20
    max_backlog: int = 100_000  # queued rows on disk before submit() waits
    nlog_retention: float = 7 * 86400.0
    flush_on_close: bool = True
    close_timeout: float = 5.0
    console_group_wait: float | None = None
    channel_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)


_KNOWN = {
    "urls",
    "apprise_config",
    "routes",
    "default_routes",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "rate",
    "burst",
    "digest_max",
    "max_in_flight",
    "timeout",
    "retry",
    "fallback",
    "inhibit_rules",
    "inhibit_ttl",
    "templates",
    "max_value_len",
    "max_title_len",
    "max_body_len",
    "max_group_items",
    "max_backlog",
    "nlog_retention",
    "flush_on_close",
    "close_timeout",
    "console_group_wait",
    "channels",
    "base_dir",
}
_DURATIONS = (
    "group_wait",
    "group_interval",
    "repeat_interval",
    "timeout",
    "inhibit_ttl",
    "nlog_retention",
    "close_timeout",
)
_INTS = (
    "burst",
    "digest_max",
    "max_in_flight",
    "max_value_len",
    "max_title_len",
    "max_body_len",
    "max_group_items",
    "max_backlog",
)


def _url_entry_errors(index: int, entry: Any) -> list[ConfigError]:
    """``notify.urls[i]``: a URL string, or ``{url: ..., tags: [...]}`` with string tags."""
    where = f"notify.urls[{index}]"
    if isinstance(entry, str):
        return []
    if not isinstance(entry, dict):
        return [
            ConfigError(
                f"{where}: expected an Apprise URL or {{url: ..., tags: [...]}}, "
                f"got {type(entry).__name__}"
            )
        ]
    errors = []
    unknown = sorted(set(entry) - {"url", "tags", "tag"})
    if unknown:
        errors.append(
            ConfigError(f"{where}: unknown key {unknown[0]!r}", hint="an entry takes url and tags")
        )
    if not isinstance(entry.get("url"), str):
        errors.append(ConfigError(f"{where}.url: expected an Apprise URL like json://host/path"))
    tags = entry.get("tags", entry.get("tag"))
    if (
        tags is not None
        and not isinstance(tags, str)
        and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags))
    ):
        errors.append(
            ConfigError(
                f"{where}.tags: expected a tag or a list of tags, got {tags!r}",
                hint="tags: [security-team, oncall]",
            )
        )
    return errors


_TEMPLATE_KEYS = ("title", "body")


def _template_errors(templates: dict[str, Any]) -> list[ConfigError]:
    """``notify.templates.KIND``: ``{title: "...", body: "..."}``, both strings: a list or a
    mapping would pass here and then fail in every delivery."""
    errors = []
    for kind, tpl in templates.items():
        where = f"notify.templates.{kind}"
        if tpl is None:
            continue
        if not isinstance(tpl, dict):
            errors.append(ConfigError(f"{where}: expected {{title: ..., body: ...}}"))
            continue
        for key, value in tpl.items():
            if key not in _TEMPLATE_KEYS:
                errors.append(
                    ConfigError(
                        f"{where}: unknown key {key!r}", hint="a template takes title and body"
                    )
                )
            elif not isinstance(value, str):
                got = (
                    "a list"
                    if isinstance(value, list)
                    else "a mapping"
                    if isinstance(value, dict)
                    else repr(value)
                )
                errors.append(
                    ConfigError(
                        f"{where}.{key}: expected a string, got {got}",
                        hint=f'{key}: "$emoji $title" (quote it)',
                    )
                )
    return errors


def parse_settings(
    cfg: dict[str, Any] | None, *, errors: list[ConfigError] | None = None
) -> NotifySettings:
    """Validate ``notify:``; a wrong key or value raises ConfigError naming ``notify.KEY``.

    Bad ``urls`` entries and templates are all reported, not only the first: with ``errors``
    given they are appended there (and left out of the settings) for the caller to report
    with the rest; without it they are raised together (ConfigErrors)."""
    cfg = dict(cfg or {})
    problems: list[ConfigError] = []
    urls_cfg = cfg.get("urls")
    if isinstance(urls_cfg, list):
        kept = []
        for i, entry in enumerate(urls_cfg):
            found = _url_entry_errors(i, entry)
            problems.extend(found)
            kept.append(None if found else entry)
        cfg["urls"] = kept
    templates_cfg = cfg.get("templates")
    if isinstance(templates_cfg, dict):
        found = _template_errors(templates_cfg)
        problems.extend(found)
        if found:
            cfg["templates"] = {}
    if problems and errors is None:
        raise ConfigErrors.of(problems)
    if errors is not None:
        errors.extend(problems)
    unknown = sorted(set(cfg) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"notify: unknown key {unknown[0]!r}",
            hint="known keys: " + ", ".join(sorted(_KNOWN - {"base_dir"})),
        )
    s = NotifySettings()
    urls = cfg.get("urls") or []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list):
        raise ConfigError(
            "notify.urls: expected a list of Apprise URLs",
            hint="urls: [json://host/hook, {url: slack://..., tags: [dev]}]",
        )
    s.urls = urls
    ac = cfg.get("apprise_config") or []
    s.apprise_config = [ac] if isinstance(ac, str) else [str(p) for p in ac]
    if "routes" in cfg and cfg["routes"] is not None:
        if not isinstance(cfg["routes"], list):
            raise ConfigError(
                "notify.routes: expected a list of rules",
                hint="routes: [{match: {kind: brute_force}, tags: [oncall]}]",
            )
        s.routes = list(cfg["routes"])
        s.default_routes = parse_bool(
            cfg.get("default_routes", False), where="notify.default_routes"
        )
    elif "default_routes" in cfg:
        s.default_routes = parse_bool(cfg["default_routes"], where="notify.default_routes")
    gb = cfg.get("group_by", s.group_by)
    s.group_by = [gb] if isinstance(gb, str) else [str(x) for x in gb]
    for key in _DURATIONS:
        if key in cfg:
            setattr(s, key, parse_duration(cfg[key], where=f"notify.{key}"))
    for key in _INTS:
        if key in cfg:
            try:
                value = int(cfg[key])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"notify.{key}: expected a whole number, got {cfg[key]!r}",
                ) from None
            if value < 0 or (key in ("max_in_flight", "burst") and value < 1):
                raise ConfigError(f"notify.{key}: out of range ({value})")
            setattr(s, key, value)
    if "rate" in cfg:
        try:
            s.rate = float(cfg["rate"])
        except (TypeError, ValueError):
            raise ConfigError(
                f"notify.rate: expected messages per second, got {cfg['rate']!r}",
                hint="0 disables rate limiting",
            ) from None
    retry = cfg.get("retry") or {}
    if not isinstance(retry, dict):
        raise ConfigError(
            "notify.retry: expected a mapping",
            hint="retry: {initial: 1s, max_delay: 5m, max_attempts: 10}",
        )
    for key in ("initial", "max_delay", "max_age"):
        if key in retry:
            setattr(s.retry, key, parse_duration(retry[key], where=f"notify.retry.{key}"))
    if "max_attempts" in retry:
        s.retry.max_attempts = max(1, int(retry["max_attempts"]))
    if "multiplier" in retry:
        s.retry.multiplier = max(1.0, float(retry["multiplier"]))
    s.fallback = cfg.get("fallback") or None
    if "inhibit_rules" in cfg and cfg["inhibit_rules"] is not None:
        s.inhibit_rules = list(cfg["inhibit_rules"])
    templates = cfg.get("templates") or {}
    if not isinstance(templates, dict):
        raise ConfigError("notify.templates: expected {kind: {title: ..., body: ...}}")
    s.templates = {str(k): dict(v or {}) for k, v in templates.items()}
    if "flush_on_close" in cfg:
        s.flush_on_close = parse_bool(cfg["flush_on_close"], where="notify.flush_on_close")
    if cfg.get("console_group_wait") is not None:
        s.console_group_wait = parse_duration(
            cfg["console_group_wait"], where="notify.console_group_wait"
        )
    s.channel_overrides = {str(k): dict(v or {}) for k, v in (cfg.get("channels") or {}).items()}
    if cfg.get("base_dir"):
        s.base_dir = Path(cfg["base_dir"])
    return s
