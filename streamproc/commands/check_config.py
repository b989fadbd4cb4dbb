"""``streamproc check-config``: validate a config and print what it will do.

Checks the YAML (``config.load_config``: syntax, keys, bindings, field mappings, regexes,
detector parameters) and the notification setup (``notify.urls``, ``notify.apprise_config``:
every URL must be one Apprise can load), then prints the brokers, the topic bindings, each
binding's detectors with their effective thresholds, the channels (by service name: never a
URL, token or password) and which channels each detector kind reaches at each severity.

Exit status 0 when valid; 1 with ``file:line: what is wrong, how to fix it`` otherwise, one
line for each problem, not only the first: every section is checked (kafka, mqtt, each topic
binding, detectors, state, alerts) and every problem of the notify setup (each bad URL, tag,
template and Apprise config entry) is listed. ``run`` refuses to start with the same list.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..alerts import SEVERITIES, Alert
from ..config import Binding, Config, LineDict, LineList, load_config
from ..errors import ConfigError, ConfigErrors
from ..ops.redact import redact_text, redact_url, register_config_secrets, service_name


@dataclass(slots=True)
class ChannelInfo:
    service: str  # Apprise service name (slack, json, mailto...)
    name: str  # the URL redacted to scheme://host
    tags: list[str]
    catch_all: bool = False  # receives every alert (an inline URL without tags)


@dataclass(slots=True)
class DetectorInfo:
    kind: str
    family: str
    severity: str
    params: dict[str, Any]


@dataclass(slots=True)
class Report:
    config: Config
    detectors: dict[str, list[DetectorInfo]] = field(default_factory=dict)  # binding name ->
    channels: list[ChannelInfo] = field(default_factory=list)
    # kind -> severity -> channels reached (redacted names), then "#tag" for each tag
    routes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    routing_note: str = ""


# -- checking --------------------------------------------------------------------------------


def check(path: str | None) -> Report:
    """Load and validate everything; raises ConfigError (ConfigErrors: all of them) with
    file and line."""
    config, channels = load_checked(path)
    report = Report(config=config, channels=channels)
    from ..detectors import build_detectors

    for binding in config.bindings:
        report.detectors[binding.name] = [
            DetectorInfo(d.kind, d.family, getattr(d, "severity", ""), dict(d.params))
            for d in build_detectors(config, binding)
        ]
    kinds = sorted({(d.kind, d.family) for infos in report.detectors.values() for d in infos})
    report.routes, report.routing_note = _with_line(config, _routes, config, kinds)
    return report


def load_checked(path: str | None) -> tuple[Config, list[ChannelInfo]]:
    """The config at ``path`` and its channels, or every problem of every section and of the
    notify setup raised together (ConfigErrors), each at its ``file:line``. check-config and
    ``run`` both start here, so ``run`` refuses to start with the list check-config prints.
    From here on the config's passwords and URL tokens are masked in every log line."""
    errors: list[ConfigError] = []
    config = load_config(path, errors=errors)
    register_config_secrets(config)
    notify_errors: list[ConfigError] = []
    channels = _load_channels(config, notify_errors)
    errors.extend(_placed(config, exc) for exc in notify_errors)
    if errors:
        raise ConfigErrors.of(errors)
    return config, channels


def _placed(config: Config, exc: ConfigError) -> ConfigError:
    """``exc`` with the config file and the best line, unless it already names a file."""
    if exc.file:
        return exc
    return ConfigError(
        exc.message, file=config.file, line=_notify_line(config, exc.message), hint=exc.hint
    )


def _with_line(config: Config, func: Any, *args: Any) -> Any:
    """Run ``func``; a ConfigError without a place gets the config file and the best line."""
    try:
        return func(*args)
    except ConfigError as exc:
        if exc.file:
            raise
        raise ConfigError(
            exc.message, file=config.file, line=_notify_line(config, exc.message), hint=exc.hint
        ) from None


_PATH_RE = re.compile(r"notify((?:\.[A-Za-z_][\w-]*|\[\d+\])*)")


def _notify_line(config: Config, message: str) -> int | None:
    """The line of the deepest ``notify.a.b[2]`` path named in ``message`` (or of a quoted
    unknown key); ``notify:`` itself as the last resort."""
    raw = config.raw
    if not isinstance(raw, LineDict) or "notify" not in raw:
        return None
    line = raw.key_lines.get("notify")
    node: Any = raw["notify"]
    match = _PATH_RE.search(message)
    steps = re.findall(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]", match.group(1)) if match else []
    quoted = re.search(r"unknown key '([^']+)'", message)
    if quoted:
        steps.append((quoted.group(1), ""))
    for key, index in steps:
        if key and isinstance(node, LineDict) and key in node:
            line = node.key_lines.get(key, line)
            node = node[key]
        elif index and isinstance(node, list) and int(index) < len(node):
            item = node[int(index)]
            if isinstance(item, LineDict):
                line = item.line
            elif isinstance(node, LineList):
                line = node.item_lines[int(index)]
            elif config.file and line is not None:
                line = _find_item_line(config.file, line, int(index)) or line
            node = item
        else:
            break
    return line


def _find_item_line(file: str, start_line: int, index: int) -> int | None:
    """Line of the ``index``-th ``- item`` of a block list starting after ``start_line``."""
    try:
        lines = Path(file).read_text().splitlines()
    except OSError:
        return None
    seen = -1
    for number in range(start_line, len(lines)):
        text = lines[number].strip()
        if text.startswith("- "):
            seen += 1
            if seen == index:
                return number + 1
        elif (
            text
            and not text.startswith("#")
            and seen >= 0
            and ":" in text
            and not lines[number].startswith(" ")
        ):
            break
    return None


def _load_channels(config: Config, errors: list[ConfigError]) -> list[ChannelInfo]:
    """The notify package's own loader when it is there (so check-config and the runtime agree
    exactly), else Apprise directly."""
    try:
        from ..notify.channels import load_channels
        from ..notify.settings import parse_settings
    except ImportError:
        try:
            return _load_channels_with_apprise(config)
        except ConfigError as exc:
            errors.append(exc)
            return []
    try:
        settings = parse_settings(config.notify, errors=errors)
        channels, _fallbacks = load_channels(settings, errors=errors)
    except ConfigError as exc:
        errors.append(exc)
        return []
    errors.extend(_delivery_rule_errors(settings))
    out = []
    for ch in channels:
        name = redact_url(str(getattr(ch, "name", "") or getattr(ch, "url", "")))
        out.append(
            ChannelInfo(
                service_name(name),
                name,
                sorted(map(str, ch.tags)),
                bool(getattr(ch, "catch_all", False)),
            )
        )
    return out


def _delivery_rule_errors(settings: Any) -> list[ConfigError]:
    """The routes and inhibit rules, built as the notifier builds them: ``run`` builds its
    notifier while the sources already consume, so a bad one must stop it here, before."""
    from ..notify.inhibit import parse_rules
    from ..notify.routing import build_routes

    errors = []
    for build in (
        lambda: build_routes(settings.routes, defaults=settings.default_routes),
        lambda: parse_rules(settings.inhibit_rules),
    ):
        try:
            build()
        except ConfigError as exc:
            errors.append(exc)
    return errors


def _load_channels_with_apprise(config: Config) -> list[ChannelInfo]:
    import apprise

    notify = config.notify or {}
    out: list[ChannelInfo] = []
    urls = notify.get("urls") or []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list):
        raise ConfigError("notify.urls: expected a list of Apprise URLs")
    for i, entry in enumerate(urls):
        url, tags = (
            (entry.get("url"), entry.get("tags") or []) if isinstance(entry, dict) else (entry, [])
        )
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        if not isinstance(url, str) or "://" not in url:
            raise ConfigError(f"notify.urls[{i}]: expected an Apprise URL like json://host/path")
        if apprise.Apprise.instantiate(url) is None:
            raise ConfigError(
                f"notify.urls[{i}]: Apprise cannot load {redact_url(url)}",
                hint="check the service name and the URL's parts against the "
                "Apprise wiki for that service",
            )
        out.append(
            ChannelInfo(service_name(url), redact_url(url), sorted(map(str, tags)), not tags)
        )
    paths = notify.get("apprise_config") or []
    for path in [paths] if isinstance(paths, str) else paths:
        ac = apprise.AppriseConfig()
        text = ""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(
                f"notify.apprise_config: cannot read {path}: {exc.strerror}",
                hint="a relative path is read from the folder of the config file",
            ) from None
        if not ac.add_config(text) or not ac.services():
            raise ConfigError(f"notify.apprise_config: Apprise found no usable URL in {path}")
        for server in ac.services():
            url = server.url(privacy=True)
            out.append(
                ChannelInfo(service_name(url), redact_url(url), sorted(map(str, server.tags)))
            )
    return out


def _routes(
    config: Config, kinds: list[tuple[str, str]]
) -> tuple[dict[str, dict[str, list[str]]], str]:
    """kind -> severity -> channels reached (service name and redacted host), computed by the
    notify package's own Router on a sample firing alert of each kind and severity."""
    try:
        from ..notify.channels import load_channels
        from ..notify.routing import Router, build_routes
        from ..notify.settings import parse_settings
    except ImportError:
        return {}, "not shown: this build has no notify routing"
    settings = parse_settings(config.notify)
    channels, _ = load_channels(settings)
    router = Router(build_routes(settings.routes, defaults=settings.default_routes), channels)
    out: dict[str, dict[str, list[str]]] = {}
    for kind, family in kinds:
        out[kind] = {}
        for severity in SEVERITIES:
            alert = Alert(
                kind=kind,
                severity=severity,
                status="firing",
                key={},
                fingerprint="",
                event_time=0.0,
                title="",
                labels={"kind": kind, "family": family},
                family=family,
            )
            tags = router.tags_for(alert)
            reached = sorted({_channel_label(c) for c in router.channels_for_tags(tags)})
            out[kind][severity] = reached + [f"#{t}" for t in tags]
    return out, ""


def _channel_label(channel: Any) -> str:
    return redact_url(str(getattr(channel, "name", "")))


# -- printing --------------------------------------------------------------------------------


def _fmt_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return "[" + ",".join(_fmt_value(v) for v in value) + "]"
    return str(value)


def _binding_line(b: Binding) -> str:
    if b.source == "mqtt":
        where = f"mqtt {b.mqtt_topic}"
    elif b.pattern is not None:
        where = f"{b.source} /{b.pattern}/"
    else:
        where = f"{b.source} {b.topic}"
    extras = [b.format, f"lateness {_fmt_value(b.allowed_lateness)}s"]
    if (b.max_future_skew, b.max_time_jump, b.jump_confirmations) != (300.0, 3600.0, 2):
        extras.append(
            f"future skew {_fmt_value(b.max_future_skew)}s, time jump "
            f"{_fmt_value(b.max_time_jump)}s after {b.jump_confirmations} records"
        )
    if b.mapping is not None:
        extras.append("fields mapped")
    name = f"{b.name}: " if b.name not in (b.topic, b.family) else ""
    return f"  {name}{where} -> {b.family} ({', '.join(extras)})"


def render(report: Report, out: TextIO) -> None:
    c = report.config
    w = out.write
    w(f"config: {c.file or '(built-in defaults)'}: valid\n\nbrokers:\n")
    if c.kafka is not None:
        k = c.kafka
        auth = k.security_protocol
        if k.security_protocol.startswith("SASL"):
            auth += f", {k.sasl_mechanism or 'PLAIN'} user {k.sasl_username}, password set"
        w(
            f"  kafka: {k.bootstrap_servers} ({auth}), group {k.group_id}, internal topics "
            f"{k.topics.prefix}*\n"
        )
    if c.mqtt is not None:
        m = c.mqtt
        parts = [f"MQTT {m.protocol}", f"QoS {m.qos}", "TLS" if m.tls is not None else "no TLS"]
        if m.username:
            parts.append(f"user {m.username}" + (", password set" if m.password else ""))
        if m.shared_group:
            parts.append(f"shared group {m.shared_group}")
        w(f"  mqtt: {m.host}:{m.port} ({', '.join(parts)})\n")
    if c.kafka is None and c.mqtt is None:
        w("  embedded Kafka-compatible broker (Tansu) on a free loopback port\n")
    own = [f for f in c.contracts.values() if f.origin is not None]
    if own:
        w("\nevent families (yours, besides the built-in ones):\n")
        for f in own:
            w(
                f"  {f.family}: {len(f.fields)} fields, key {','.join(f.key) or '-'}, kafka "
                f"{f.kafka_topic} (from {f.origin})\n"
            )
    w("\ntopic bindings:\n")
    for b in c.bindings:
        w(_binding_line(b) + "\n")
        if b.source == "kafka":
            w(_partitioning_line(c, b))
    if c.ingest is not None:
        _render_ingest(c, w)
    w("\ndetectors (effective parameters):\n")
    for b in c.bindings:
        infos = report.detectors.get(b.name, [])
        w(f"  {b.name}:{'' if infos else ' (none)'}\n")
        for d in infos:
            params = " ".join(f"{k}={_fmt_value(v)}" for k, v in sorted(d.params.items()))
            w(f"    {d.kind} [{d.severity}] {params}\n")
    if c.rules.skipped:
        w("\nSigma rules skipped (they cannot run here; see docs/rules.md):\n")
        for skipped in c.rules.skipped:
            w(f"  {skipped}\n")
    w("\nchannels:\n")
    if not report.channels:
        w("  (none: alerts go to the alert log and the alerts file only)\n")
    for ch in report.channels:
        tags = ", ".join(ch.tags) if ch.tags else ""
        scope = "every alert" if ch.catch_all else f"tags: {tags}"
        w(f"  {ch.service} {ch.name} ({scope})\n")
    w("\nroutes (where a firing alert of each kind goes, by severity):\n")
    if report.routing_note:
        w(f"  {report.routing_note}\n")
    for kind, by_severity in sorted(report.routes.items()):
        w(f"  {kind}:\n")
        # Severities with the same destinations share a line.
        groups: list[tuple[list[str], list[str]]] = []
        for severity, reached in by_severity.items():
            if groups and groups[-1][1] == reached:
                groups[-1][0].append(severity)
            else:
                groups.append(([severity], reached))
        for severities, reached in groups:
            channels = [r for r in reached if not r.startswith("#")]
            wanted = [r[1:] for r in reached if r.startswith("#")]
            dest = ", ".join(channels) or "no channel"
            w(
                f"    {', '.join(severities)} -> {dest}"
                f"{' (tags: ' + ', '.join(wanted) + ')' if wanted else ''}\n"
            )


def _render_ingest(c: Config, w: Any) -> None:
    """What ``streamproc run --listen`` serves of ``ingest:`` (never a secret)."""
    from ..sources.ingest import webhook_binding

    ingest = c.ingest
    assert ingest is not None
    w("\nHTTP ingest (streamproc run --listen):\n")
    for b in c.bindings:
        if b.source == "kafka" and b.topic is not None:
            w(f"  POST /api/v1/events/{b.name} -> produced to {b.topic}\n")
        elif b.source == "mqtt":
            w(f"  POST /api/v1/events/{b.name} -> judged at once (MQTT binding)\n")
    hooks = ingest.webhooks
    target = webhook_binding(ingest, c.bindings)
    for provider in sorted(hooks.secrets):
        w(f"  POST /api/v1/webhooks/{provider} -> {target.name if target else '?'} (secret set)\n")
    rate = (
        f"{ingest.rate:g} requests/s per client address, burst {ingest.burst:g}"
        if ingest.rate > 0
        else "no rate limit"
    )
    w(f"  {rate}")
    if hooks.secrets:
        w(f"; replays remembered: {hooks.dedup_entries} deliveries, {hooks.dedup_ttl:g}s")
    w("\n")


def main(args: argparse.Namespace) -> int:
    try:
        report = check(args.config)
    except ConfigError as exc:
        print(redact_text(str(exc)), file=sys.stderr)
        return 1
    render(report, sys.stdout)
    return 0


def _partitioning_line(config: Any, binding: Any) -> str:
    """How the binding's keyed detectors get their keys co-located (repartition.py)."""
    from ..pipeline.repartition import (
        assumed_colocation,
        internal_bindings,
        plan,
        rekeyed,
        ship_filter,
        topic_name,
    )

    try:
        _, remote = plan(config, binding)
        assumed = assumed_colocation(config, binding)
        # what each repartition topic is sent (pipeline/repartition.py, "What is shipped")
        sent = {
            field: (
                "every record"
                if ship_filter(config, internal, remote[field]) is None
                else "the records they can use, and progress marks"
            )
            for internal in internal_bindings(config, binding)
            for field in [rekeyed(internal)[0]]
        }
    except Exception:  # noqa: BLE001 - shown only; the config was validated above
        return ""
    # a detector that does not declare its colocate: say what it was taken to need
    notes = "".join(
        f"      {kind} declares no colocate: assumed its state is keyed by "
        f"{' or '.join(fields) if fields else 'nothing'} (the family key); declare "
        f"'colocate' on the class to say otherwise\n"
        for kind, fields in sorted(assumed.items())
    )
    keyed = f"keyed_by {binding.keyed_by}" if binding.keyed_by else "records not keyed"
    if not remote:
        return f"      {keyed}: every detector runs where the records arrive\n{notes}"
    parts = "; ".join(
        f"{', '.join(sorted(kinds))} via {topic_name(config, binding, field)} ({sent[field]})"
        for field, kinds in sorted(remote.items())
    )
    return f"      {keyed}: re-keyed: {parts}\n{notes}"
