"""Channels: the Apprise services alerts are delivered to, and how they are named safely.

A channel is one Apprise service (one URL) with its tags. Channels come from
- inline ``notify.urls`` (a string, or ``{url: ..., tags: [...]}``); an inline URL without tags
  is a *catch-all*: it receives every alert, so the smallest config works;
- Apprise YAML/TEXT config files named in ``notify.apprise_config`` (tags as Apprise defines
  them), parsed by Apprise itself entry by entry (``apprise_file_services``), ``${ENV}``
  replaced in the parsed values; an entry Apprise cannot load is an error at its line;
- the local sinks: the alerts file and the console (plugins.py).

Secrets: a channel's ``id`` is a hash of its URL and its ``name`` is ``redact_url(url)``; only
those two ever reach logs, errors, metrics or the state directory.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..config import LineDict, LineList, load_yaml, substitute_env
from ..errors import ConfigError, ConfigErrors
from ..ops.redact import redact_text
from .schemas import ALERTMANAGER_SCHEMAS, CONSOLE_SCHEMA, FILE_SCHEMA, console_url, file_url
from .settings import NotifySettings

# Schemas whose "host" is a real network host. For every other schema (slack://TokenA/...,
# discord://webhook_id/token, tgram://bot_token/...) the host part is often a credential.
_HOST_SCHEMAS = {
    "json",
    "jsons",
    "form",
    "forms",
    "xml",
    "xmls",
    "http",
    "https",
    "mailto",
    "mailtos",
    "ntfy",
    "ntfys",
    "gotify",
    "gotifys",
    "mqtt",
    "mqtts",
    "syslog",
    "rsyslog",
    "matrix",
    "matrixs",
    "mmost",
    "mmosts",
    "rocket",
    "rockets",
    "apprise",
    "apprises",
    "nctalk",
    "nctalks",
    "ncloud",
    "nclouds",
    "xmpp",
    "xmpps",
    "kodi",
    "kodis",
    "growl",
    "signal",
    "signals",
    "smtp",
    "smtps",
    *ALERTMANAGER_SCHEMAS,
}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` and nothing else; ``scheme://***`` when the host may be secret.

    Users, passwords, paths, queries and tokens are dropped. Safe for logs, errors, metrics.
    """
    text = str(url).strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not scheme or not re.fullmatch(r"[a-z][a-z0-9+.]*", scheme):
        return "***"
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # e.g. a bot token where a port would be
        return f"{scheme}://***"
    if scheme in (FILE_SCHEMA, CONSOLE_SCHEMA):
        return f"{scheme}://"
    if scheme not in _HOST_SCHEMAS or not _looks_like_host(host):
        return f"{scheme}://***"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def _looks_like_host(host: str) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


@dataclass(slots=True, eq=False)
class Channel:
    id: str  # stable across restarts: the notification log and outbox are keyed by it
    name: str  # redacted, for humans and metrics
    service_name: str  # Apprise's name of the service ("JSON", "Slack", ...)
    tags: frozenset[str]
    service: Any  # the Apprise NotifyBase instance
    catch_all: bool = False
    internal: bool = False  # only a fallback target; routing never selects it
    fmt: str = "markdown"  # markdown | text | html | jsonl | alertmanager | alertmanager-webhook
    rate: float = 1.0
    burst: int = 5
    max_in_flight: int = 8
    timeout: float = 10.0
    group_wait: float | None = None  # None: the global setting
    group_interval: float | None = None
    max_body_len: int = 4000
    fast: bool = True  # allow deliver.py's keep-alive fast path for plain webhooks
    # Alertmanager formats (am_payloads.py): how often a firing alert is re-sent, for how
    # long (None: notify.inhibit_ttl), and the URLs put into the payloads
    resend: float = 60.0
    resend_for: float | None = None
    external_url: str = ""
    generator_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _channel_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def _service_url(service: Any) -> str:
    # Custom @notify plugins render url() without their path/query; their original URL is
    # kept in _default_args. Built-in services round-trip through url().
    default_args = getattr(service, "_default_args", None)
    if isinstance(default_args, dict) and default_args.get("url"):
        return str(default_args["url"])
    return str(service.url())


def _format_for(service: Any, url: str) -> str:
    from apprise.common import NotifyFormat

    scheme = url.split("://", 1)[0].lower()
    if scheme == FILE_SCHEMA:
        return "jsonl"
    if scheme == CONSOLE_SCHEMA:
        return "text"
    if scheme in ALERTMANAGER_SCHEMAS:
        return "alertmanager"
    fmt = getattr(service, "notify_format", NotifyFormat.MARKDOWN)
    if isinstance(fmt, tuple | list | set):
        return "markdown" if NotifyFormat.MARKDOWN in fmt else str(next(iter(fmt)).value)
    return str(getattr(fmt, "value", fmt))


def _make(
    url: str,
    service: Any,
    tags: Iterable[str],
    settings: NotifySettings,
    *,
    catch_all: bool = False,
    internal: bool = False,
) -> Channel:
    ch = Channel(
        id=_channel_id(url),
        name=redact_url(url),
        service_name=str(service.service_name),
        tags=frozenset(str(t) for t in tags),
        service=service,
        catch_all=catch_all,
        internal=internal,
        fmt=_format_for(service, url),
        rate=settings.rate,
        burst=settings.burst,
        max_in_flight=settings.max_in_flight,
        timeout=settings.timeout,
        max_body_len=min(
            settings.max_body_len, int(getattr(service, "body_maxlen", 0) or settings.max_body_len)
        ),
    )
    # Apprise's own per-instance throttle would serialise our concurrent sends; the rate
    # limit stage owns pacing. Services with a documented API limit (Slack 1.2 s) keep theirs.
    if url.split("://", 1)[0].lower() in (FILE_SCHEMA, CONSOLE_SCHEMA, *ALERTMANAGER_SCHEMAS):
        service.request_rate_per_sec = 0
    if ch.fmt == "alertmanager":
        # Alertmanager groups, waits and paces itself (as with Prometheus, alerts go at
        # once); one send at a time keeps a resolve behind its firing
        ch.group_wait = ch.group_interval = 0.0
        ch.rate, ch.max_in_flight = 0.0, 1
    return ch


def load_apprise() -> Any:
    """Apprise, with our own services registered (plugins.py). Imported when the first URL
    is loaded, not with this module: registering loads every Apprise plugin (about 0.3 s),
    which a config without channels, and the judging side, never needs."""
    import apprise

    from . import plugins  # noqa: F401 - registers streamprocfile://, alertmanager://...

    return apprise


def _instantiate(url: str, where: str) -> Any:
    service = load_apprise().Apprise.instantiate(url)
    if service is None:
        raise ConfigError(
            f"{where}: Apprise cannot load the URL {redact_url(url)}",
            hint="check the URL syntax for that service in the Apprise wiki",
        )
    return service


OVERRIDE_KEYS = (
    "rate",
    "burst",
    "max_in_flight",
    "fast",
    "timeout",
    "group_wait",
    "group_interval",
    "format",
    "resend",
    "resend_for",
    "external_url",
    "generator_url",
)
WEBHOOK_FORMAT = "alertmanager-webhook"


def _apply_overrides(ch: Channel, settings: NotifySettings) -> None:
    """``notify.channels: {TAG-or-NAME: {rate: 5, burst: 20, timeout: 5s, ...}}``."""
    from apprise.plugins.custom_json import NotifyJSON

    from .settings import parse_bool, parse_duration

    for selector, over in settings.channel_overrides.items():
        if selector not in ch.tags and selector not in (ch.name, ch.id, ch.service_name):
            continue
        where = f"notify.channels.{selector}"
        unknown = sorted(set(over) - set(OVERRIDE_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}",
                hint="known keys: " + ", ".join(OVERRIDE_KEYS),
            )
        if "format" in over:
            if over["format"] != WEBHOOK_FORMAT:
                raise ConfigError(
                    f"{where}.format: unknown format {over['format']!r}",
                    hint=f"format: {WEBHOOK_FORMAT} (Alertmanager's webhook "
                    "JSON); chat formats are set on the URL (?format=)",
                )
            if not isinstance(ch.service, NotifyJSON):
                raise ConfigError(
                    f"{where}.format: {WEBHOOK_FORMAT} needs a JSON webhook "
                    f"channel (URL scheme json or jsons), not "
                    f"{ch.service_name}",
                    hint="select the webhook channel by its tag",
                )
            ch.fmt = WEBHOOK_FORMAT
        for key in ("external_url", "generator_url"):
            if key in over:
                setattr(ch, key, str(over[key] or ""))
        for key in ("resend", "resend_for"):
            if key in over:
                value = parse_duration(over[key], where=f"{where}.{key}")
                if key == "resend" and value <= 0:
                    raise ConfigError(
                        f"{where}.resend: must be more than 0",
                        hint="resend: 1m (as Prometheus' resend_delay)",
                    )
                setattr(ch, key, value)
        if "rate" in over:
            ch.rate = float(over["rate"])
        for key in ("burst", "max_in_flight"):
            if key in over:
                setattr(ch, key, max(1, int(over[key])))
        if "fast" in over:
            ch.fast = parse_bool(over["fast"], where=f"{where}.fast")
        for key in ("timeout", "group_wait", "group_interval"):
            if key in over:
                setattr(ch, key, parse_duration(over[key], where=f"{where}.{key}"))


# -- Apprise config files ---------------------------------------------------------------------
#
# AppriseConfig.add_config() loads what it can and logs the rest: three broken entries of five
# were once dropped without a word. So each entry is given to Apprise's own parser alone
# (with the file's global settings: version, asset, tag, groups), the services it loaded are
# counted against the services the entry declares, and a shortfall is an error at the entry's
# line, with Apprise's reason (its tokens masked).


class _AppriseLog(logging.Handler):
    """Collects what Apprise logs while it parses one entry (and keeps it out of our log:
    Apprise's messages may quote the URL)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


def _parse_alone(parse: Any, content: str) -> tuple[list[Any], list[str]]:
    logger = logging.getLogger("apprise")
    handler = _AppriseLog()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        services, _includes = parse(content)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    return list(services), handler.messages


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [str(node)] if isinstance(node, str | int) and not isinstance(node, bool) else []


def _reason(messages: list[str], url: str, entry: Any = None) -> str:
    """Apprise's own words for why an entry did not load, without any part of its URL or of
    the settings written under it (a password, a token)."""
    why = next((m for m in messages if not m.startswith(("Could not load", "Unparseable"))), "")
    why = re.sub(
        r",? *(?:\(YAML )?(?:in YAML configuration )?entry #\d+(?:, item #\d+)?\)?", "", why
    )
    if not why:
        return ""
    shown = redact_url(url)
    parts = set(re.split(r"[/:@?&=#,;\s]+", url)) | set(_strings(entry))
    for part in sorted(parts, key=len, reverse=True):
        if len(part) >= 3 and part not in shown:
            why = why.replace(part, "***")
    return redact_text(why.strip().rstrip("."))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _entry_url(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return next((str(k) for k in entry if "://" in str(k)), "")
    return ""


def _declared(entry: Any) -> int:
    """How many services an entry of ``urls:`` declares: a URL with a list of settings under
    it is one service for each item."""
    if isinstance(entry, dict):
        settings = entry.get(_entry_url(entry))
        if isinstance(settings, list) and settings:
            return len(settings)
    return 1


def apprise_file_services(text: str, file: str, errors: list[ConfigError]) -> list[Any]:
    """The Apprise services of one Apprise config file (YAML or TEXT); each entry that Apprise
    cannot load (wholly or partly) is appended to ``errors`` with ``file:line``."""
    load_apprise()  # an entry may name one of our services
    from apprise.config.base import ConfigBase

    services: list[Any] = []
    fmt = ConfigBase.detect_config_format(text)
    if fmt is None or str(getattr(fmt, "value", fmt)) != "yaml":
        # TEXT: one ``[tags=]url`` per line; # and ; start comments.
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            try:
                line = substitute_env(line, file=file, line=number)
            except ConfigError as exc:
                errors.append(exc)
                continue
            if "\n" in line or "\r" in line:
                errors.append(
                    ConfigError(
                        "an environment variable on this line holds a line break",
                        file=file,
                        line=number,
                        hint="a variable's value must stay on its line",
                    )
                )
                continue
            loaded, messages = _parse_alone(ConfigBase.config_parse_text, line)
            head, _, tail = line.strip().partition("=")
            url = line.strip() if "://" in head or not tail else tail.strip()
            if not loaded:
                errors.append(_entry_error(file, number, url, messages))
            services.extend(loaded)
        if not services and not errors:
            errors.append(
                ConfigError(
                    "Apprise found no usable URL in this config",
                    file=file,
                    hint="see https://github.com/caronc/apprise/wiki/config",
                )
            )
        return services
    try:
        doc = load_yaml(text, file=file)
    except ConfigError as exc:
        errors.append(exc)
        return services
    urls = doc.get("urls") if isinstance(doc, dict) else None
    if not isinstance(urls, list) or not urls:
        errors.append(
            ConfigError(
                "Apprise found no URL in this config",
                file=file,
                line=doc.line if isinstance(doc, LineDict) else None,
                hint="list them under urls: (see "
                "https://github.com/caronc/apprise/wiki/config_yaml)",
            )
        )
        return services
    if "include" in doc:
        errors.append(
            ConfigError(
                "include is not followed here",
                file=file,
                line=doc.key_lines.get("include") if isinstance(doc, LineDict) else None,
                hint="name each Apprise config file in notify.apprise_config instead",
            )
        )
    common = {k: _plain(v) for k, v in doc.items() if k not in ("urls", "include")}
    lines = urls.item_lines if isinstance(urls, LineList) else [None] * len(urls)
    for entry, entry_line in zip(urls, lines, strict=True):
        content = yaml.safe_dump({**common, "urls": [_plain(entry)]}, sort_keys=False)
        loaded, messages = _parse_alone(ConfigBase.config_parse_yaml, content)
        if len(loaded) < _declared(entry):
            errors.append(
                _entry_error(
                    file, entry_line, _entry_url(entry), messages, partly=bool(loaded), entry=entry
                )
            )
        services.extend(loaded)
    return services


def _entry_error(
    file: str,
    line: int | None,
    url: str,
    messages: list[str],
    *,
    partly: bool = False,
    entry: Any = None,
) -> ConfigError:
    # The URL is followed by a space: redact_text reads a URL up to the next blank.
    what = "every service of " if partly else ""
    shown = redact_url(url) if url else "this entry"
    why = _reason(messages, url, entry)
    return ConfigError(
        f"Apprise cannot load {what}{shown} ({why or 'no reason given'})",
        file=file,
        line=line,
        hint="check the URL and its settings against the Apprise wiki for that service",
    )


def load_channels(
    settings: NotifySettings,
    *,
    alerts_file: str | None = None,
    console: bool = False,
    errors: list[ConfigError] | None = None,
) -> tuple[list[Channel], list[Channel]]:
    """All channels, and the fallback channels (possibly also among the first list).

    Every URL and every entry of every Apprise config file is checked, and all the problems
    are reported, not the first: appended to ``errors`` when given, else raised together
    (ConfigErrors) once everything was read."""
    problems: list[ConfigError] = []
    channels: list[Channel] = []
    for i, entry in enumerate(settings.urls):
        where = f"notify.urls[{i}]"
        if entry is None:  # rejected by parse_settings, reported there
            continue
        if isinstance(entry, dict):
            url = entry.get("url")
            tags = entry.get("tags") or entry.get("tag") or []
            if isinstance(tags, str):
                tags = [t.strip() for t in tags.split(",") if t.strip()]
        else:
            url, tags = entry, []
        if not isinstance(url, str) or "://" not in url:
            problems.append(
                ConfigError(
                    f"{where}: expected an Apprise URL like json://host/path",
                    hint="or {url: ..., tags: [...]}",
                )
            )
            continue
        # ${NAME} was replaced when the config was read (config.load_yaml): once, never again.
        try:
            service = _instantiate(url, where)
        except ConfigError as exc:
            problems.append(exc)
            continue
        channels.append(_make(url, service, tags, settings, catch_all=not tags))
    for path_text in settings.apprise_config:
        path = Path(path_text)
        if not path.is_absolute():
            path = settings.base_dir / path
        try:
            text = path.read_text()
        except OSError as exc:
            problems.append(
                ConfigError(
                    f"notify.apprise_config: cannot read {path}: {exc.strerror}",
                    hint="a relative path is read from the folder of the config file",
                )
            )
            continue
        for service in apprise_file_services(text, str(path), problems):
            url = _service_url(service)
            channels.append(_make(url, service, [str(t) for t in service.tags], settings))
    if alerts_file:
        url = file_url(alerts_file)
        ch = _make(url, _instantiate(url, "alerts_file"), ["alerts-file"], settings, catch_all=True)
        ch.rate, ch.group_wait, ch.group_interval, ch.max_in_flight = 0.0, 0.0, 0.0, 1
        channels.append(ch)
    if console:
        url = console_url()
        ch = _make(url, _instantiate(url, "console"), ["console"], settings, catch_all=True)
        ch.rate, ch.max_in_flight = 0.0, 1
        ch.group_wait = ch.group_interval = settings.console_group_wait
        channels.append(ch)
    fallbacks: list[Channel] = []
    if settings.fallback:
        fb = str(settings.fallback)
        if "://" in fb:
            try:
                ch = _make(
                    fb, _instantiate(fb, "notify.fallback"), ["fallback"], settings, internal=True
                )
            except ConfigError as exc:
                problems.append(exc)
            else:
                channels.append(ch)
                fallbacks.append(ch)
        else:
            fallbacks = [c for c in channels if fb in c.tags]
            if not fallbacks and not problems:  # else the channel may be among the broken
                problems.append(
                    ConfigError(
                        f"notify.fallback: no channel has the tag {fb!r}",
                        hint="give a URL, or a tag used in your Apprise config",
                    )
                )
    for ch in channels:
        try:
            _apply_overrides(ch, settings)
        except ConfigError as exc:
            if all(str(exc) != str(p) for p in problems):  # once, not once per channel
                problems.append(exc)
    if problems:
        if errors is None:
            raise ConfigErrors.of(problems)
        errors.extend(problems)
    seen: dict[str, Channel] = {}
    for ch in channels:
        if ch.id in seen:  # the same URL twice: one channel with the union of the tags
            seen[ch.id].tags = seen[ch.id].tags | ch.tags
            seen[ch.id].catch_all |= ch.catch_all
            continue
        seen[ch.id] = ch
    fallback_ids = {c.id for c in fallbacks}
    return list(seen.values()), [seen[i] for i in fallback_ids]
