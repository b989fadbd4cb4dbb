"""Load and validate the YAML config. Errors name the file, the line and the fix.

The whole file is optional: with no config, streamproc binds the six default topics to their
families with every built-in detector at its defaults, and (with no broker named) runs the
embedded Tansu broker.

    kafka:                         # omit both kafka and mqtt: embedded broker
      bootstrap_servers: kafka-1:9092,kafka-2:9092
      group_id: streamproc
      application_id: streamproc   # prefix of internal topics; default: the group id
      auto_offset_reset: earliest  # where a new consumer group starts
      security_protocol: SASL_SSL  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
      sasl_mechanism: SCRAM-SHA-512
      sasl_username: streamproc
      sasl_password: ${KAFKA_PASSWORD}
      ssl_cafile: /etc/ssl/kafka-ca.pem
    mqtt:
      host: edge-broker.local
      port: 8883
      username: streamproc
      password: ${MQTT_PASSWORD}
      tls: {ca_file: /etc/ssl/mqtt-ca.pem}
      protocol: 5                  # 5 or 3.1.1
      qos: 1
      shared_group: streamproc     # subscribe as $share/streamproc/<filter>
    families_dir: contracts/       # your own event families (contract YAML files as in
                                   #   topics/*.yaml); or  contracts: [a.yaml, more/]
    topics:                        # topic bindings; omitted = the six defaults on Kafka
      - topic: ecs-auth            # or  pattern: "^logs-auth-.*$"
        family: auth-logs
        fields:                    # contract field <- dotted path in the record
          timestamp: "@timestamp"
          username: user.name
          ip_address: source.ip
          success: {path: event.outcome, map: {success: true, failure: false}}
        detectors:
          brute_force: {threshold: 10, window: 1800}
          password_spray: {enabled: false}
    detectors:                     # defaults for every binding of the family
      metric_threshold: {cpu_warning: 85}
    notify: {...}                  # see notify/
    alerts:                        # how large one alert may grow (values copied from records
      max_bytes: 65536             #   are cut, and say so: see alerts.py)
      max_value_bytes: 1024
    api:                           # the HTTP listener of `streamproc run --listen` (http/)
      token: ${STREAMPROC_API_TOKEN}   # bearer token for all but /healthz, /readyz, /-/*
      ssl_certfile: tls/api.pem    # serve HTTPS (with ssl_keyfile); ssl_cafile: require
      ssl_keyfile: tls/api.key     #   client certificates signed by that CA
      max_body_bytes: 1048576      # larger request bodies get 413
      resolve_timeout: 1h          # a firing alert that never resolves stays active this long
    rules: [rules/]                # rule files or folders (docs/rules.md)
    sigma: [sigma/]                # Sigma rules (or a mapping with logsources: docs/rules.md)

``${NAME}`` and ``${NAME:-default}`` are replaced from the environment in the parsed values
(``load_yaml``): a variable's value is always one string, never YAML. Settings of ``kafka:``
and ``mqtt:`` that take a number or true/false read such a string (``port: ${MQTT_PORT}``).

Relative paths in the file (state_dir, TLS files, dead-letter file, Apprise config files)
resolve against the folder of the config file, as Prometheus and Alertmanager do.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .alerts import AlertLimits
from .contracts import Contract, builtin_contracts, family_for_topic, get_contract, parse_contract
from .decode.mapping import FieldMapping
from .decode.patterns import LineFormat, named_format, regex_format
from .decode.records import DEFAULT_MAX_RECORD_BYTES
from .errors import ConfigError, ConfigErrors
from .pipeline.internal_topics import InternalTopics
from .sources.base import STATUS_PREFIX

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from .rules import RuleSet
    from .sources.ingest import IngestSettings

DEFAULT_GROUP_ID = "streamproc"


# -- YAML with line numbers ----------------------------------------------------------------


class LineDict(dict[str, Any]):
    """A mapping that remembers the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A list that remembers the line of each item (1-based) and of itself."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[str(key)] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(item, deep=True) for item in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [item.start_mark.line + 1 for item in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)

# -- ${NAME} from the environment, in parsed values ------------------------------------------
#
# Substituting into the raw text would let a value rewrite the document: KPW='abc #def' would
# end at the comment, a newline would add a key. So every ${NAME} is first replaced by an
# inert token (letters and digits: YAML reads it as plain text anywhere, the line count does
# not change), the text is parsed, and only then is each token in a parsed string replaced by
# the variable's value. A value is therefore always the string it was, never YAML.

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class _EnvRef:
    name: str
    default: str | None
    line: int


def load_yaml(text: str, *, file: str | None = None) -> Any:
    """Parse YAML into LineDict/LineList (lines kept for errors), then replace ``${NAME}`` and
    ``${NAME:-default}`` in parsed strings (keys and values) from the environment. A ${NAME}
    inside a comment is never read. Raises ConfigError with the line on bad YAML or a
    variable that is not set."""
    token = "streamprocenv" + secrets.token_hex(8)
    refs: list[_EnvRef] = []
    lines = []
    for number, line in enumerate(text.splitlines(keepends=True), 1):

        def mark(match: re.Match[str], number: int = number) -> str:
            refs.append(_EnvRef(match.group(1), match.group(2), number))
            return f"{token}x{len(refs) - 1}x"

        lines.append(_ENV.sub(mark, line))
    try:
        doc = yaml.load("".join(lines), Loader=_LineLoader)
    except ValueError as exc:  # a tag that cannot convert its value: !!int ${PORT}
        if token not in str(exc):
            raise ConfigError(f"not valid YAML: {exc}", file=file) from None
        raise ConfigError(
            "a YAML tag such as !!int cannot convert a ${NAME} reference (it is "
            "replaced after parsing)",
            file=file,
            hint="leave the tag out: kafka: and mqtt: settings read numbers from strings",
        ) from None
    except yaml.YAMLError as exc:
        mark_ = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=file,
            line=mark_.line + 1 if mark_ else None,
            hint="check indentation and quoting",
        ) from None
    if not refs:
        return doc
    found = re.compile(re.escape(token) + r"x(\d+)x")

    def value(match: re.Match[str]) -> str:
        ref = refs[int(match.group(1))]
        got = os.environ.get(ref.name)
        if got is not None:
            return got
        if ref.default is not None:
            return ref.default
        raise ConfigError(
            f"environment variable {ref.name} is not set",
            file=file,
            line=ref.line,
            hint=f"export {ref.name}=... or write ${{{ref.name}:-default}}",
        )

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return found.sub(value, node) if token in node else node
        if isinstance(node, LineDict):
            out = LineDict()
            out.line, out.key_lines = node.line, {}
            for key, item in node.items():
                new_key = walk(key)
                out[new_key] = walk(item)
                out.key_lines[str(new_key)] = node.key_lines.get(str(key), node.line)
            return out
        if isinstance(node, LineList):
            seq = LineList(walk(item) for item in node)
            seq.line, seq.item_lines = node.line, node.item_lines
            return seq
        return node

    return walk(doc)


def substitute_env(text: str, *, file: str | None = None, line: int | None = None) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in one value (already parsed: a string,
    not a document)."""

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set",
                file=file,
                line=line,
                hint=f"export {name}=... or write ${{{name}:-default}}",
            )
        return value

    return _ENV.sub(repl, text)


def _unfit_constant(
    contract: Contract, name: str, default: Any, value_map: dict[str, Any] | None
) -> str | None:
    """What is wrong with a mapping's ``value``/``default`` or ``map`` values for contract
    field ``name``, checked as the decoder checks a record's value; None if nothing."""
    from .decode.fields import Reject, enum_value
    from .events import COERCERS, CoercionError, parse_timestamp

    spec = contract.fields[name]
    givens = [("value", default)] if default is not None else []
    givens += [(f"map value of {k!r}", v) for k, v in (value_map or {}).items() if v is not None]
    for what, value in givens:
        try:
            if spec.type == "timestamp":
                parse_timestamp(value)
            elif spec.enum is not None:
                enum_value(name, COERCERS[spec.type], spec.enum, value)
            else:
                COERCERS[spec.type](value)
        except (CoercionError, Reject) as exc:
            return f"{what}: {exc.detail}"
        except (ValueError, TypeError, OverflowError) as exc:  # a time no parser reads
            return f"{what}: {value!r} is not a timestamp ({exc})"
    return None


def _line(node: Any, key: str | None = None) -> int | None:
    if isinstance(node, LineDict):
        if key is not None and key in node.key_lines:
            return node.key_lines[key]
        return node.line
    return None


# -- the config model ------------------------------------------------------------------------


@dataclass(slots=True)
class KafkaConfig:
    bootstrap_servers: str
    group_id: str = DEFAULT_GROUP_ID
    # Prefix of every internal topic (internal_topics.py); None: the group id.
    application_id: str | None = None
    auto_offset_reset: str = "earliest"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    client_id: str = "streamproc"
    dlq_suffix: str = ".dlq"
    alert_topic: str = ""  # "": <application_id>.alerts
    alert_dlq_topic: str = ""  # "": <application_id>.alerts.dlq
    max_poll_records: int = 5000
    repartition_partitions: int = 6
    # Seconds of event time a source partition may run ahead of the slowest one while
    # repartitioned detectors are fed (0: no alignment; experimental). See runtime.Alignment.
    max_partition_skew: float = 0.0
    # Wall seconds a repartitioned task waits for a quiet source partition before it lets the
    # others' records through without it (see detectors/merge.py).
    repartition_merge_wait: float = 2.0
    session_timeout_ms: int = 10000
    # started by this process (Tansu) for it alone: its consumers take every partition
    # without a group join (sources/kafka.py)
    embedded: bool = False

    def __post_init__(self) -> None:
        self.alert_topic = self.alert_topic or self.topics.alerts
        self.alert_dlq_topic = self.alert_dlq_topic or self.topics.alerts_dlq

    @property
    def topics(self) -> InternalTopics:
        """The names of this deployment's internal topics."""
        return InternalTopics(self.application_id or self.group_id)

    def client_kwargs(self) -> dict[str, Any]:
        """Connection settings shared by aiokafka consumers, producers and admin clients."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            ctx = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
            ctx.check_hostname = self.ssl_check_hostname
            kwargs["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


@dataclass(slots=True)
class ApiConfig:
    """``api:``: the HTTP listener's security and limits (http/listener.py) and how long the
    Alertmanager API keeps a firing alert active (http/active.py)."""

    token: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cafile: str | None = None  # set: clients must present a certificate it signed
    max_body_bytes: int = 1 << 20
    # Seconds a firing alert stays active without its resolve, counted from when it was
    # read (Alertmanager's resolve_timeout): most detectors report an incident once.
    resolve_timeout: float = 3600.0

    def ssl_context(self) -> Any:
        """The listener's ssl.SSLContext, or None for plain HTTP."""
        if not self.ssl_certfile:
            return None
        from .http.listener import server_ssl_context

        return server_ssl_context(self.ssl_certfile, self.ssl_keyfile, self.ssl_cafile)


@dataclass(slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: dict[str, Any] | None = None  # ca_file, cert_file, key_file, insecure
    protocol: str = "5"  # "5" or "3.1.1"
    qos: int = 1
    client_id: str = "streamproc"
    shared_group: str | None = None
    session_expiry: int = 86400  # seconds the broker keeps our session (MQTT 5)
    keepalive: int = 30
    dead_letter_file: str = "streamproc-deadletters.jsonl"


@dataclass(slots=True)
class Binding:
    """One topic binding: which records are which family, and how they map to the contract."""

    name: str
    family: str
    contract: Contract
    source: str = "kafka"  # kafka | mqtt | file
    topic: str | None = None
    pattern: str | None = None
    mqtt_topic: str | None = None
    format: str = "json"  # json | combined | regex | sshd | syslog (internal: repartitioned)
    lines: LineFormat | None = None  # the compiled line format of regex, sshd and syslog
    mapping: FieldMapping | None = None
    allowed_lateness: float = 60.0
    # Event time written by producers is checked (detectors/engine.py): live, a record this
    # far ahead of the clock is dead-lettered ``future``; a jump of the stream time beyond
    # max_time_jump waits for jump_confirmations further records.
    max_future_skew: float = 300.0
    max_time_jump: float = 3600.0
    jump_confirmations: int = 2
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    line: int | None = None
    # The record field the topic is partitioned by (the producer's key), if any. Keyed
    # detectors whose key it does not suit run on a repartition topic (repartition.py).
    keyed_by: str | None = None

    def matches(self, topic: str) -> bool:
        if self.topic is not None:
            return topic == self.topic
        return self.pattern is not None and re.fullmatch(self.pattern, topic) is not None


def match_binding(bindings: Iterable[Binding], source_kind: str, topic: str) -> Binding | None:
    """The first of ``bindings`` that judges the records of ``topic`` read from a
    ``source_kind`` source: ``kafka`` (and ``file``), a Kafka or file binding whose topic or
    pattern matches; ``mqtt``, an MQTT binding whose topic filter matches, and for the agents'
    status topics the MQTT host-metrics binding; ``http``, the binding the URL names."""
    if source_kind == "http":
        return next((b for b in bindings if b.name == topic), None)
    if source_kind == "mqtt":
        if topic.startswith(STATUS_PREFIX):
            return next(
                (b for b in bindings if b.source == "mqtt" and b.family == "host-metrics"), None
            )
        return next(
            (
                b
                for b in bindings
                if b.source == "mqtt" and b.mqtt_topic and mqtt_filter_matches(b.mqtt_topic, topic)
            ),
            None,
        )
    return next(
        (b for b in bindings if b.source in (source_kind, "file") and b.matches(topic)), None
    )


def mqtt_filter_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard match, ``$share/<group>/`` understood (aiomqtt's own matcher)."""
    import aiomqtt  # here: a run without MQTT does not import it (or paho)

    try:
        return bool(aiomqtt.Topic(topic).matches(topic_filter))
    except ValueError:  # not a valid topic name: matches nothing
        return False


@dataclass(slots=True)
class Config:
    bindings: list[Binding]
    kafka: KafkaConfig | None = None
    mqtt: MqttConfig | None = None
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    api: ApiConfig = field(default_factory=ApiConfig)
    state_dir: Path = Path("streamproc-data")
    # Seconds between checkpoints of detector state (with the offsets it is exact for).
    checkpoint_interval: float = 10.0
    checkpoints: bool = True
    file: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    alert_limits: AlertLimits = AlertLimits()
    # every family a binding may name: the built-in ones and those of families_dir/contracts
    contracts: dict[str, Contract] = field(default_factory=builtin_contracts)
    # rule files and Sigma rules (rules/): detectors without Python
    rules: RuleSet = field(default_factory=lambda: _no_rules())
    # ``ingest:``: HTTP events and webhooks (sources/ingest.py); None: the defaults
    ingest: IngestSettings | None = None

    @property
    def internal_topics(self) -> InternalTopics:
        """The names of the deployment's internal topics (without Kafka, as in a replay:
        those of the default application id)."""
        return self.kafka.topics if self.kafka is not None else InternalTopics(DEFAULT_GROUP_ID)

    def binding_for(
        self, source_kind: str, topic: str, internal: Iterable[Binding] = ()
    ) -> Binding | None:
        """The binding that judges the records of ``topic`` read from a ``source_kind``
        source (None: no binding does; see ``match_binding`` for kafka, mqtt and http).

        A Kafka repartition topic is judged by one of ``internal`` (the repartition bindings
        a Judge runs) alone: no user binding, whatever its pattern. ``replay`` (a file given
        as ``TOPIC=FILE``): as Kafka, else the binding named ``topic``, else the default
        family whose default topic ``topic`` is, through a configured binding of that family
        that maps no fields (its parameters kept) or else the family's defaults."""
        if source_kind == "kafka" and self.internal_topics.is_repartition(topic):
            return match_binding(internal, source_kind, topic)
        if source_kind != "replay":
            return match_binding(self.bindings, source_kind, topic)
        found = match_binding(self.bindings, "kafka", topic)
        if found is None:
            found = match_binding(self.bindings, "http", topic)  # by name
        if found is not None:
            return found
        family = family_for_topic(topic, self.contracts)
        if family is None:
            return None
        for candidate in self.bindings:
            if candidate.family == family and candidate.mapping is None:
                return candidate
        return Binding(
            name=family,
            family=family,
            contract=get_contract(family, self.contracts),
            source="file",
            topic=topic,
        )

    def detector_params(self, binding: Binding, kind: str) -> dict[str, Any]:
        merged = dict(self.detectors.get(kind) or {})
        merged.update(binding.detectors.get(kind) or {})
        return merged

    @property
    def kafka_bindings(self) -> list[Binding]:
        return [b for b in self.bindings if b.source == "kafka"]

    @property
    def mqtt_bindings(self) -> list[Binding]:
        return [b for b in self.bindings if b.source == "mqtt"]


# -- loading --------------------------------------------------------------------------------

_TOP_KEYS = {
    "kafka",
    "mqtt",
    "topics",
    "detectors",
    "notify",
    "state_dir",
    "metrics",
    "logging",
    "state",
    "alerts",
    "event_time",
    "families_dir",
    "contracts",
    "api",
    "rules",
    "sigma",
    "ingest",
}


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    errors: list[ConfigError] | None = None,
) -> Config:
    """Read and validate a config file (None: the built-in defaults). Every section is
    checked even when an earlier one is wrong; see ``parse_config`` for ``errors``."""
    if path is None:
        return parse_config({}, file=None, errors=errors)
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config: {exc.strerror}",
            file=file,
            hint="check the path given with -c/--config",
        ) from None
    return parse_config_text(text, file=file, errors=errors)


def parse_config_text(
    text: str, *, file: str | None = None, errors: list[ConfigError] | None = None
) -> Config:
    doc = load_yaml(text, file=file)
    if doc is None:
        doc = LineDict()
    if not isinstance(doc, dict):
        raise ConfigError("the config must be a YAML mapping at the top level", file=file, line=1)
    return parse_config(doc, file=file, errors=errors)


def parse_config(
    doc: dict[str, Any], *, file: str | None, errors: list[ConfigError] | None = None
) -> Config:
    """The Config of a parsed document, every section checked: a section's first error is
    one entry, and the next section is read all the same. A section in error counts as left
    at its defaults, so nothing that depends on it reports a second, follow-on error.

    With ``errors`` given, the problems are appended there and the Config returned holds the
    valid sections (for a caller that checks more, such as notify, before it reports them
    all); without it they are raised together (ConfigErrors)."""
    found: list[ConfigError] = []

    def section(parse: Any, *args: Any, default: Any = None) -> Any:
        try:
            return parse(*args)
        except ConfigError as exc:
            found.append(exc)
            return default

    for key in sorted(set(doc) - _TOP_KEYS, key=lambda k: _line(doc, str(k)) or 0):
        found.append(
            ConfigError(
                f"unknown top-level key {key!r}",
                file=file,
                line=_line(doc, str(key)),
                hint=f"known keys: {', '.join(sorted(_TOP_KEYS))}",
            )
        )
    _resolve_paths(doc, file)
    time_defaults = section(_parse_event_time, doc.get("event_time"), file, default={})
    kafka = section(_parse_kafka, doc["kafka"], file) if doc.get("kafka") is not None else None
    mqtt = section(_parse_mqtt, doc["mqtt"], file) if doc.get("mqtt") is not None else None
    # What the file names, parsed or not: a kafka: section in error must not turn every
    # binding into an MQTT one.
    source = "mqtt" if doc.get("mqtt") is not None and doc.get("kafka") is None else "kafka"
    contracts = section(_parse_families, doc, file, default=None)
    bindings = section(
        _parse_topics,
        doc,
        file,
        source,
        found,
        time_defaults,
        contracts or builtin_contracts(),
        contracts is not None,
        default=[],
    )
    contracts = contracts or builtin_contracts()
    detectors = section(_parse_detector_defaults, doc, file, default={})
    interval, checkpoints = section(_parse_state, doc, file, default=(10.0, True))
    rules = load_rules_of(doc, file, contracts, found)
    config = Config(
        bindings=bindings,
        kafka=kafka,
        mqtt=mqtt,
        detectors=detectors,
        checkpoint_interval=interval,
        checkpoints=checkpoints,
        notify=dict(doc.get("notify") or {}),
        state_dir=Path(doc.get("state_dir") or "streamproc-data"),
        file=file,
        raw=doc,
        alert_limits=section(_parse_alerts, doc.get("alerts"), file, default=AlertLimits()),
        contracts=contracts,
        rules=rules,
        api=section(_parse_api, doc.get("api"), file, default=ApiConfig()),
    )
    if doc.get("ingest") is not None:
        config.ingest = section(_parse_ingest, doc["ingest"], file, bindings)
    _validate_detectors(config, doc, found)
    if errors is not None:
        errors.extend(found)
    elif found:
        raise ConfigErrors.of(found)
    return config


def _no_rules() -> RuleSet:
    from .rules import RuleSet  # imported when used: it imports the detectors

    return RuleSet()


def load_rules_of(
    doc: dict[str, Any], file: str | None, contracts: dict[str, Contract], errors: list[ConfigError]
) -> RuleSet:
    """The rules of ``rules:`` and ``sigma:`` (rules/): each problem one entry of
    ``errors``."""
    from .rules import load_rules

    return load_rules(doc, file, set(contracts), errors)


def _parse_ingest(node: Any, file: str | None, bindings: list[Binding]) -> IngestSettings:
    from .sources.ingest import check_webhook_binding, parse_ingest

    settings = parse_ingest(node, file)
    check_webhook_binding(
        settings, bindings, file, _line(node, "webhooks") if isinstance(node, dict) else None
    )
    return settings


def _parse_topics(
    doc: dict[str, Any],
    file: str | None,
    source: str,
    errors: list[ConfigError],
    time_defaults: dict[str, Any],
    contracts: dict[str, Contract],
    families_read: bool = True,
) -> list[Binding]:
    """The bindings of ``topics:`` (each one in error is one entry of ``errors``), or the
    defaults when there is none. With the families of ``families_dir``/``contracts`` in
    error (``families_read`` False), a binding of a family not known is left out unreported:
    its fault is the families' one, reported already."""
    topics = doc.get("topics")
    if topics is None:
        bindings = default_bindings(source)
        for b in bindings:
            for name, value in time_defaults.items():
                setattr(b, name, value)
        return bindings
    if not isinstance(topics, list):
        raise ConfigError(
            "'topics' must be a list of topic bindings", file=file, line=_line(doc, "topics")
        )
    bindings = []
    for i, item in enumerate(topics):
        try:
            bindings.append(
                _parse_binding(
                    item,
                    i,
                    file,
                    default_source=source,
                    time_defaults=time_defaults,
                    contracts=contracts,
                )
            )
        except ConfigError as exc:
            if families_read or not isinstance(item, dict) or str(item.get("family")) in contracts:
                errors.append(exc)
    return bindings


def _parse_detector_defaults(doc: dict[str, Any], file: str | None) -> dict[str, Any]:
    detectors = doc.get("detectors") or {}
    if not isinstance(detectors, dict):
        raise ConfigError(
            "'detectors' must map detector kinds to parameters",
            file=file,
            line=_line(doc, "detectors"),
        )
    return dict(detectors)


def _parse_state(doc: dict[str, Any], file: str | None) -> tuple[float, bool]:
    """``state: {checkpoint_interval, checkpoints}``."""
    state = doc.get("state") or {}
    if not isinstance(state, dict) or set(state) - {"checkpoint_interval", "checkpoints"}:
        raise ConfigError(
            "'state' takes checkpoint_interval (seconds) and checkpoints (true/false)",
            file=file,
            line=_line(doc, "state"),
        )
    interval = state.get("checkpoint_interval", 10.0)
    if not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(
            "state.checkpoint_interval must be a positive number of seconds",
            file=file,
            line=_line(state, "checkpoint_interval"),
        )
    checkpoints = _read_scalar(
        bool, state.get("checkpoints", True), "state.checkpoints", state, "checkpoints", file
    )
    return float(interval), bool(checkpoints)


def _parse_alerts(node: Any, file: str | None) -> AlertLimits:
    """``alerts: {max_bytes, max_value_bytes}``: bounds that keep an alert well inside one
    Kafka record (1 MiB) and an Apprise message, and a value long enough to be read."""
    if node is None:
        return AlertLimits()
    node = _expect_mapping(node, "'alerts'", file, _line(node))
    limits = {"max_bytes": (4096, 512 * 1024), "max_value_bytes": (64, 64 * 1024)}
    values: dict[str, int] = {}
    for key, value in node.items():
        if key not in limits:
            raise ConfigError(
                f"unknown alerts setting {key!r}",
                file=file,
                line=_line(node, key),
                hint="known settings: max_bytes, max_value_bytes",
            )
        low, high = limits[key]
        if type(value) is not int or not low <= value <= high:
            raise ConfigError(
                f"alerts.{key} must be a number of bytes from {low} to {high}, not {value!r}",
                file=file,
                line=_line(node, key),
            )
        values[key] = value
    result = AlertLimits(**values)
    if result.max_value_bytes * 8 > result.max_bytes:
        raise ConfigError(
            f"alerts.max_value_bytes ({result.max_value_bytes}) must be at most "
            f"an eighth of alerts.max_bytes ({result.max_bytes})",
            file=file,
            line=_line(node),
            hint="an alert holds several copied values: its key, title, labels and samples",
        )
    return result


def _only_known(node: dict[str, Any], known: set[str], section: str, file: str | None) -> None:
    """A key of ``section`` that is not a setting is an error (a typo must not silently
    keep the default)."""
    for key in node:
        if key not in known:
            raise ConfigError(
                f"unknown {section} setting {key!r}",
                file=file,
                line=_line(node, key),
                hint=f"known settings: {', '.join(sorted(known))}",
            )


def _parse_api(node: Any, file: str | None) -> ApiConfig:
    """``api: {token, ssl_certfile, ssl_keyfile, ssl_cafile, max_body_bytes,
    resolve_timeout}``."""
    if node is None:
        return ApiConfig()
    from .notify.settings import parse_duration

    node = _expect_mapping(node, "'api'", file, _line(node))
    _only_known(node, set(ApiConfig.__slots__), "api", file)
    values = dict(node)
    timeout = values.pop("resolve_timeout", 3600.0)  # a duration: 1h, 30m, 3600
    _coerce_scalars(ApiConfig, values, node, "api", file)
    for key in ("token", "ssl_certfile", "ssl_keyfile", "ssl_cafile"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    if values.get("token") == "":
        raise ConfigError(
            "api.token is empty",
            file=file,
            line=_line(node, "token"),
            hint="set the variable it names, or remove api.token to serve without one",
        )
    if (values.get("ssl_keyfile") or values.get("ssl_cafile")) and not values.get("ssl_certfile"):
        raise ConfigError(
            "api.ssl_keyfile and api.ssl_cafile need api.ssl_certfile",
            file=file,
            line=_line(node),
            hint="the listener's certificate (PEM)",
        )
    size = values.get("max_body_bytes", 1 << 20)
    if type(size) is not int or not 1024 <= size <= 1 << 30:
        raise ConfigError(
            f"api.max_body_bytes must be a number of bytes from 1024 to 2^30, not {size!r}",
            file=file,
            line=_line(node, "max_body_bytes"),
        )
    try:
        values["resolve_timeout"] = parse_duration(timeout, where="api.resolve_timeout")
    except ConfigError as exc:
        raise ConfigError(
            exc.message, file=file, line=_line(node, "resolve_timeout"), hint=exc.hint
        ) from None
    if values["resolve_timeout"] <= 0:
        raise ConfigError(
            "api.resolve_timeout must be positive",
            file=file,
            line=_line(node, "resolve_timeout"),
            hint="e.g. 1h",
        )
    api = ApiConfig(**values)
    if api.ssl_certfile:
        try:
            api.ssl_context()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError(
                f"api TLS: cannot load {api.ssl_certfile}: {exc}",
                file=file,
                line=_line(node, "ssl_certfile"),
                hint="a PEM certificate (chain) and its key",
            ) from None
    return api


# Settings that name a file or folder: (section, key); None is the top level.
_PATH_SETTINGS = [
    (None, "state_dir"),
    ("kafka", "ssl_cafile"),
    ("kafka", "ssl_certfile"),
    ("kafka", "ssl_keyfile"),
    ("mqtt", "dead_letter_file"),
    ("mqtt.tls", "ca_file"),
    ("mqtt.tls", "cert_file"),
    ("mqtt.tls", "key_file"),
    ("notify", "apprise_config"),
    (None, "families_dir"),
    (None, "contracts"),
    ("api", "ssl_certfile"),
    ("api", "ssl_keyfile"),
    ("api", "ssl_cafile"),
    (None, "rules"),
    (None, "sigma"),
    ("sigma", "rules"),
]


def _resolve_paths(doc: dict[str, Any], file: str | None) -> None:
    """Make the relative paths written in ``file`` relative to its folder, not to the working
    directory (as Prometheus and Alertmanager do), so one config works from anywhere. Paths
    left at their defaults (state_dir, mqtt.dead_letter_file) stay relative to the working
    directory."""
    if file is None:
        return
    base = Path(os.path.abspath(file)).parent

    def resolved(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return str(base / value)
        return value

    for section, key in _PATH_SETTINGS:
        node: Any = doc
        for part in section.split(".") if section else []:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            continue
        value = node[key]
        if isinstance(value, list):  # in place: a LineList keeps the lines of its items
            value[:] = [resolved(v) for v in value]
        else:
            node[key] = resolved(value)


def default_bindings(source: str = "kafka") -> list[Binding]:
    # The default topics are produced keyed by their contract key (streamproc produce,
    # the agent, the samples), so their keyed detectors need no repartitioning.
    return [
        Binding(
            name=c.family,
            family=c.family,
            contract=c,
            source=source,
            topic=c.kafka_topic,
            mqtt_topic=c.mqtt_topic,
            keyed_by=c.key[0] if c.key else None,
        )
        for c in builtin_contracts().values()
    ]


def _expect_mapping(node: Any, what: str, file: str | None, line: int | None) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ConfigError(f"{what} must be a mapping", file=file, line=line)
    return node


_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool}


def _read_scalar(kind: type, value: Any, where: str, node: Any, key: str, file: str | None) -> Any:
    """``value`` as ``kind`` (int, float or bool) when it is a string (``${NAME}`` gives one:
    "false" must not be a true string); other values are returned as they are."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    try:
        if kind is bool:
            if text not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                raise ValueError(text)
            return text in ("true", "yes", "on", "1")
        return kind(text)
    except ValueError:
        expected = "true or false" if kind is bool else "a number"
        raise ConfigError(
            f"{where} must be {expected}, not {value!r}", file=file, line=_line(node, key)
        ) from None


def _coerce_scalars(
    cls: type[DataclassInstance],
    values: dict[str, Any],
    node: Any,
    section: str,
    file: str | None,
) -> None:
    """A string where ``cls`` takes a number or true/false (``port: ${MQTT_PORT}``: a
    variable's value is a string) is read as that type; one that does not read is an error."""
    for name, spec in cls.__dataclass_fields__.items():
        kind = _SCALARS.get(str(spec.type).replace(" | None", ""))
        if kind is not None and name in values:
            values[name] = _read_scalar(kind, values[name], f"{section}.{name}", node, name, file)


def _parse_kafka(node: Any, file: str | None) -> KafkaConfig:
    node = _expect_mapping(node, "'kafka'", file, _line(node))
    _only_known(node, set(KafkaConfig.__slots__) - {"embedded"}, "kafka", file)
    if "bootstrap_servers" not in node:
        raise ConfigError(
            "kafka.bootstrap_servers is required",
            file=file,
            line=_line(node),
            hint="e.g. bootstrap_servers: kafka:9092 (omit 'kafka' entirely to "
            "run the embedded broker)",
        )
    values = dict(node)
    _coerce_scalars(KafkaConfig, values, node, "kafka", file)
    if isinstance(values["bootstrap_servers"], list):
        values["bootstrap_servers"] = ",".join(values["bootstrap_servers"])
    protocol = str(values.get("security_protocol", "PLAINTEXT")).upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ConfigError(
            f"kafka.security_protocol {protocol!r} is not supported",
            file=file,
            line=_line(node, "security_protocol"),
            hint="use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        )
    values["security_protocol"] = protocol
    mech = values.get("sasl_mechanism")
    if mech is not None and str(mech).upper() not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise ConfigError(
            f"kafka.sasl_mechanism {mech!r} is not supported",
            file=file,
            line=_line(node, "sasl_mechanism"),
            hint="use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        )
    if mech is not None:
        values["sasl_mechanism"] = str(mech).upper()
    if protocol.startswith("SASL") and not (
        values.get("sasl_username") and values.get("sasl_password")
    ):
        raise ConfigError(
            "SASL needs kafka.sasl_username and kafka.sasl_password",
            file=file,
            line=_line(node, "security_protocol"),
        )
    app = str(values.get("application_id") or values.get("group_id", DEFAULT_GROUP_ID))
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", app):
        key = "application_id" if values.get("application_id") else "group_id"
        raise ConfigError(
            f"kafka.{key} {app!r} cannot prefix topic names",
            file=file,
            line=_line(node, key),
            hint="internal topics are named <application_id>.<what>: use letters, "
            "digits, '.', '_' and '-' (set kafka.application_id if the "
            "group id must differ)",
        )
    reset = values.get("auto_offset_reset", "earliest")
    if reset not in ("earliest", "latest"):
        raise ConfigError(
            f"kafka.auto_offset_reset must be earliest or latest, not {reset!r}",
            file=file,
            line=_line(node, "auto_offset_reset"),
        )
    return KafkaConfig(**values)


def _parse_mqtt(node: Any, file: str | None) -> MqttConfig:
    node = _expect_mapping(node, "'mqtt'", file, _line(node))
    _only_known(node, set(MqttConfig.__slots__), "mqtt", file)
    values = dict(node)
    _coerce_scalars(MqttConfig, values, node, "mqtt", file)
    values["protocol"] = str(values.get("protocol", "5"))
    if values["protocol"] not in ("5", "3.1.1", "311"):
        raise ConfigError(
            f"mqtt.protocol must be 5 or 3.1.1, not {values['protocol']!r}",
            file=file,
            line=_line(node, "protocol"),
        )
    if values.get("qos", 1) not in (0, 1):
        raise ConfigError(
            "mqtt.qos must be 0 or 1",
            file=file,
            line=_line(node, "qos"),
            hint="QoS 2 costs two round trips per message and buys nothing "
            "here: alerts are deduplicated by fingerprint",
        )
    if values.get("tls") is True:
        values["tls"] = {}
    tls = values.get("tls")
    if isinstance(tls, dict) and "insecure" in tls:  # "false" from ${VAR} must stay false
        values["tls"] = {
            **tls,
            "insecure": _read_scalar(
                bool, tls["insecure"], "mqtt.tls.insecure", tls, "insecure", file
            ),
        }
    return MqttConfig(**values)


# Event-time checks (see detectors/engine.py): settable per binding, and for every binding
# in the top-level ``event_time:`` section.
_TIME_KEYS = ("max_future_skew", "max_time_jump", "jump_confirmations")


def _time_option(node: dict[str, Any], key: str, where: str, file: str | None) -> float | int:
    value = node[key]
    if key == "jump_confirmations":
        if type(value) is not int or value < 1:
            raise ConfigError(
                f"{where}.{key} must be a whole number >= 1",
                file=file,
                line=_line(node, key),
                hint="records of a partition that must agree before its stream "
                "time jumps (default 2)",
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(
            f"{where}.{key} must be a number of seconds > 0",
            file=file,
            line=_line(node, key),
            hint="max_future_skew default 300, max_time_jump default 3600",
        )
    return float(value)


def _parse_event_time(node: Any, file: str | None) -> dict[str, Any]:
    if node is None:
        return {}
    node = _expect_mapping(node, "'event_time'", file, _line(node))
    for key in node:
        if key not in _TIME_KEYS:
            raise ConfigError(
                f"unknown event_time setting {key!r}",
                file=file,
                line=_line(node, key),
                hint=f"known: {', '.join(_TIME_KEYS)}",
            )
    return {key: _time_option(node, key, "event_time", file) for key in node}


_BINDING_KEYS = {
    "name",
    "topic",
    "pattern",
    "family",
    "source",
    "mqtt_topic",
    "format",
    "fields",
    "allowed_lateness",
    "max_record_bytes",
    "detectors",
    "keyed_by",
    *_TIME_KEYS,
}


def _parse_binding(
    node: Any,
    index: int,
    file: str | None,
    default_source: str,
    time_defaults: dict[str, Any] | None = None,
    contracts: dict[str, Contract] | None = None,
) -> Binding:
    where = f"topics[{index}]"
    node = _expect_mapping(node, where, file, _line(node))
    line = _line(node)
    for key in node:
        if key not in _BINDING_KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}",
                file=file,
                line=_line(node, key),
                hint=f"known keys: {', '.join(sorted(_BINDING_KEYS))}",
            )
    if "family" not in node:
        raise ConfigError(
            f"{where}: 'family' is required",
            file=file,
            line=line,
            hint=f"one of {', '.join(sorted(contracts or builtin_contracts()))}",
        )
    try:
        contract = get_contract(str(node["family"]), contracts)
    except ConfigError as exc:
        raise ConfigError(
            f"{where}: {exc.message}", file=file, line=_line(node, "family"), hint=exc.hint
        ) from None
    source = str(node.get("source", default_source))
    if source not in ("kafka", "mqtt"):
        raise ConfigError(
            f"{where}: source must be kafka or mqtt", file=file, line=_line(node, "source")
        )
    topic, pattern = node.get("topic"), node.get("pattern")
    if topic is not None and pattern is not None:
        raise ConfigError(f"{where}: give 'topic' or 'pattern', not both", file=file, line=line)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{where}: pattern is not a valid regex: {exc}",
                file=file,
                line=_line(node, "pattern"),
            ) from None
    if source == "kafka" and topic is None and pattern is None:
        topic = contract.kafka_topic
    mqtt_topic = node.get("mqtt_topic")
    if source == "mqtt" and mqtt_topic is None:
        mqtt_topic = topic if topic is not None else contract.mqtt_topic
    fmt, lines = _parse_format(node.get("format", "json"), where, file, _line(node, "format"))
    if fmt == "combined" and contract.family != "api-access-logs":
        raise ConfigError(
            f"{where}: format combined only applies to family api-access-logs",
            file=file,
            line=_line(node, "format"),
        )
    mapping = None
    if node.get("fields"):
        fields = node["fields"]
        if not isinstance(fields, dict):
            raise ConfigError(
                f"{where}.fields must map contract fields to paths",
                file=file,
                line=_line(node, "fields"),
            )
        for fname in fields:
            if fname not in contract.fields:
                raise ConfigError(
                    f"{where}.fields: {fname!r} is not a field of {contract.family}",
                    file=file,
                    line=_line(fields, fname),
                    hint=f"fields: {', '.join(contract.fields)}",
                )
        try:
            mapping = FieldMapping(dict(fields), where=f"{where}.fields")
        except ConfigError as exc:
            raise ConfigError(exc.message, file=file, line=_line(fields), hint=exc.hint) from None
        for rule in mapping.rules:
            problem = _unfit_constant(contract, rule.name, rule.default, rule.value_map)
            if problem:
                raise ConfigError(
                    f"{where}.fields.{rule.name}: {problem}",
                    file=file,
                    line=_line(fields, rule.name),
                    hint="every record would be dead-lettered: give a value of the field's type",
                )
    detectors = node.get("detectors") or {}
    if not isinstance(detectors, dict):
        raise ConfigError(
            f"{where}.detectors must map detector kinds to parameters",
            file=file,
            line=_line(node, "detectors"),
        )
    lateness = node.get("allowed_lateness", 60)
    if not isinstance(lateness, int | float) or lateness < 0:
        raise ConfigError(
            f"{where}.allowed_lateness must be a number of seconds >= 0",
            file=file,
            line=_line(node, "allowed_lateness"),
        )
    max_record_bytes = node.get("max_record_bytes", DEFAULT_MAX_RECORD_BYTES)
    most = DEFAULT_MAX_RECORD_BYTES if source == "kafka" else 256 * 1024 * 1024
    if type(max_record_bytes) is not int or not 1 <= max_record_bytes <= most:
        raise ConfigError(
            f"{where}.max_record_bytes must be a number of bytes from 1 to {most}"
            f", not {max_record_bytes!r}",
            file=file,
            line=_line(node, "max_record_bytes"),
            hint="a Kafka record may be re-keyed to a repartition topic, and its "
            "copy must fit one Kafka record (1 MiB) with its envelope and "
            "key"
            if source == "kafka"
            else None,
        )
    keyed_by = node.get("keyed_by")
    if keyed_by is not None and keyed_by not in contract.fields:
        raise ConfigError(
            f"{where}: keyed_by {keyed_by!r} is not a field of {contract.family}",
            file=file,
            line=_line(node, "keyed_by"),
            hint="name the field your producer uses as the record key, or leave "
            "keyed_by out if records are not keyed (streamproc then "
            "repartitions what it needs)",
        )
    times = dict(time_defaults or {})
    times.update({key: _time_option(node, key, where, file) for key in _TIME_KEYS if key in node})
    name = str(node.get("name") or topic or pattern or mqtt_topic or contract.family)
    return Binding(
        name=name,
        family=contract.family,
        contract=contract,
        source=source,
        topic=topic,
        pattern=pattern,
        mqtt_topic=mqtt_topic,
        format=fmt,
        lines=lines,
        mapping=mapping,
        allowed_lateness=float(lateness),
        max_record_bytes=max_record_bytes,
        detectors={k: dict(v or {}) for k, v in detectors.items()},
        line=line,
        keyed_by=keyed_by,
        **times,
    )


_FORMAT_HINT = (
    "json, combined (nginx/Apache access log lines), sshd, syslog, "
    "{regex: '...(?P<field>...)...'} or {name: sshd, year: 2026, timezone: UTC}"
)


def _parse_format(
    node: Any, where: str, file: str | None, line: int | None
) -> tuple[str, LineFormat | None]:
    """``format:`` -> (its name, the compiled line format of regex/sshd/syslog, else None)."""
    if isinstance(node, str) and node in ("json", "combined"):
        return node, None
    settings: dict[str, Any] = dict(node) if isinstance(node, dict) else {"name": node}
    line = _line(node) if isinstance(node, dict) else line
    known = {"regex", "name", "year", "timezone"}
    unknown = sorted(set(settings) - known, key=str)
    if unknown or ("regex" in settings) == ("name" in settings):
        raise ConfigError(
            f"{where}: format must be one of json, combined, sshd, syslog, or a "
            f"mapping with regex or name, not {node!r}"[:300],
            file=file,
            line=line,
            hint=_FORMAT_HINT,
        )
    if "regex" in settings:
        if set(settings) != {"regex"}:
            raise ConfigError(
                f"{where}: format regex takes no year or timezone",
                file=file,
                line=line,
                hint="a regex format's timestamp group is read as "
                "ISO 8601 or epoch, like a JSON field",
            )
        try:
            return "regex", regex_format(str(settings["regex"]))
        except ValueError as exc:
            raise ConfigError(
                f"{where}: format regex refused: {exc}",
                file=file,
                line=_line(node, "regex"),
                hint="write each repeat once over plain characters (\\S+, "
                "[^ ]*); name each field (?P<name>...)",
            ) from None
    name, year = str(settings["name"]), settings.get("year")
    if year is not None and (type(year) is not int or not 1970 <= year <= 9999):
        raise ConfigError(
            f"{where}: format year must be a year such as 2026, not {year!r}",
            file=file,
            line=_line(node, "year"),
        )
    try:
        return name, named_format(name, year=year, timezone=str(settings.get("timezone", "UTC")))
    except ValueError as exc:
        raise ConfigError(
            f"{where}: format: {exc}", file=file, line=line, hint=_FORMAT_HINT
        ) from None


def _parse_families(doc: dict[str, Any], file: str | None) -> dict[str, Contract]:
    """The built-in contracts plus those of ``families_dir:`` (a folder of *.yaml) and
    ``contracts:`` (files or folders), each validated with its own file and line."""
    out = dict(builtin_contracts())
    paths: list[tuple[Any, int | None]] = []
    if doc.get("families_dir") is not None:
        paths.append((doc["families_dir"], _line(doc, "families_dir")))
    listed = doc.get("contracts")
    if listed is not None:
        if isinstance(listed, str):
            listed = [listed]
        if not isinstance(listed, list):
            raise ConfigError(
                "'contracts' must be a list of contract files or folders",
                file=file,
                line=_line(doc, "contracts"),
            )
        lines = getattr(listed, "item_lines", [])
        paths.extend(
            (p, lines[i] if i < len(lines) else _line(doc, "contracts"))
            for i, p in enumerate(listed)
        )
    origin: dict[str, str] = {}
    for value, line in paths:
        path = Path(str(value))
        if path.is_dir():
            files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        elif path.is_file():
            files = [path]
        else:
            raise ConfigError(
                f"no contract file or folder {str(value)!r}",
                file=file,
                line=line,
                hint="relative paths start at the config file's folder",
            )
        for one in files:
            contract = parse_contract(load_yaml(one.read_text(), file=str(one)), str(one))
            if contract.family in origin:
                raise ConfigError(
                    f"family {contract.family!r} is defined twice: also in "
                    f"{origin[contract.family]}",
                    file=str(one),
                    hint="give each contract its own family name",
                )
            origin[contract.family] = str(one)
            out[contract.family] = contract
    return out


def _validate_detectors(config: Config, doc: dict[str, Any], errors: list[ConfigError]) -> None:
    """Instantiate every detector once so bad parameters fail at load time, with a line: the
    binding's, or that of ``detectors:`` when the fault is a default written there (then it
    is reported once, not once for every binding it reaches)."""
    from .detectors import build_detectors

    reported: set[str] = set()  # faults of the defaults
    for binding in config.bindings:
        try:
            build_detectors(config, binding)
        except ConfigError as exc:
            if config.detectors and _fault_of_defaults(config, binding, exc):
                if exc.message not in reported:
                    reported.add(exc.message)
                    errors.append(
                        ConfigError(
                            f"detectors: {exc.message}",
                            file=config.file,
                            line=_defaults_line(doc, exc.message),
                            hint=exc.hint,
                        )
                    )
                continue
            errors.append(
                ConfigError(
                    f"topic binding {binding.name!r}: {exc.message}",
                    file=config.file,
                    line=binding.line or _line(doc, "detectors"),
                    hint=exc.hint,
                )
            )


def _defaults_line(doc: dict[str, Any], message: str) -> int | None:
    """The line of the detector kind under ``detectors:`` that ``message`` names, else that
    of ``detectors:``."""
    node = doc.get("detectors")
    for kind in node if isinstance(node, LineDict) else ():
        if f"'{kind}'" in message:
            return _line(node, str(kind))
    return _line(doc, "detectors")


def _fault_of_defaults(config: Config, binding: Binding, exc: ConfigError) -> bool:
    """Whether ``exc`` (from building ``binding``'s detectors) comes from the defaults of
    ``detectors:``: the binding fails the same way without settings of its own."""
    from .detectors import build_detectors

    if not binding.detectors:
        return True
    try:
        build_detectors(config, replace(binding, detectors={}))
    except ConfigError as default_exc:
        return default_exc.message == exc.message
    return False
