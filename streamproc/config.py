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

``${NAME}`` and ``${NAME:-default}`` are replaced from the environment anywhere in the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .contracts import Contract, builtin_contracts, get_contract
from .decode.mapping import FieldMapping
from .errors import ConfigError
from .internal_topics import InternalTopics

DEFAULT_GROUP_ID = "streamproc"


# -- YAML with line numbers ----------------------------------------------------------------

class LineDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[str, int]


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


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(text: str, *, file: str | None = None) -> str:
    def repl(match: re.Match[str], line: int) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", file=file, line=line,
                              hint=f"export {name}=... or write ${{{name}:-default}}")
        return value
    # Comments may mention ${VARS} in prose; only substitute outside comments.
    out_lines = []
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        stripped = line.lstrip()
        out_lines.append(line if stripped.startswith("#") else
                         _ENV.sub(lambda m, n=number: repl(m, n), line))
    return "".join(out_lines)


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
    embedded: bool = False  # started by us (Tansu)

    def __post_init__(self) -> None:
        self.alert_topic = self.alert_topic or self.topics.alerts
        self.alert_dlq_topic = self.alert_dlq_topic or self.topics.alerts_dlq

    @property
    def topics(self) -> InternalTopics:
        """The names of this deployment's internal topics."""
        return InternalTopics(self.application_id or self.group_id)

    def client_kwargs(self) -> dict[str, Any]:
        """Connection settings shared by aiokafka consumers, producers and admin clients."""
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                  "security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context
            ctx = create_ssl_context(cafile=self.ssl_cafile, certfile=self.ssl_certfile,
                                     keyfile=self.ssl_keyfile)
            ctx.check_hostname = self.ssl_check_hostname
            kwargs["ssl_context"] = ctx
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


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
    format: str = "json"
    mapping: FieldMapping | None = None
    allowed_lateness: float = 60.0
    max_record_bytes: int = 1024 * 1024
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    line: int | None = None
    # The record field the topic is partitioned by (the producer's key), if any. Keyed
    # detectors whose key it does not suit run on a repartition topic (repartition.py).
    keyed_by: str | None = None

    def matches(self, topic: str) -> bool:
        if self.topic is not None:
            return topic == self.topic
        return self.pattern is not None and re.fullmatch(self.pattern, topic) is not None


@dataclass(slots=True)
class Config:
    bindings: list[Binding]
    kafka: KafkaConfig | None = None
    mqtt: MqttConfig | None = None
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    notify: dict[str, Any] = field(default_factory=dict)
    state_dir: Path = Path("streamproc-data")
    # Seconds between checkpoints of detector state (with the offsets it is exact for).
    checkpoint_interval: float = 10.0
    checkpoints: bool = True
    file: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def binding_for_topic(self, topic: str) -> Binding | None:
        for binding in self.bindings:
            if binding.source in ("kafka", "file") and binding.matches(topic):
                return binding
        return None

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

_TOP_KEYS = {"kafka", "mqtt", "topics", "detectors", "notify", "state_dir", "metrics",
             "logging", "state"}


def load_config(path: str | os.PathLike[str] | None = None, *,
                overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a config file (None: the built-in defaults)."""
    if path is None:
        return parse_config({}, file=None)
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", file=file,
                          hint="check the path given with -c/--config") from None
    return parse_config_text(text, file=file)


def parse_config_text(text: str, *, file: str | None = None) -> Config:
    text = substitute_env(text, file=file)
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=file,
                          line=mark.line + 1 if mark else None,
                          hint="check indentation and quoting") from None
    if doc is None:
        doc = LineDict()
    if not isinstance(doc, dict):
        raise ConfigError("the config must be a YAML mapping at the top level", file=file,
                          line=1)
    return parse_config(doc, file=file)


def parse_config(doc: dict[str, Any], *, file: str | None) -> Config:
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown top-level key {key!r}", file=file, line=_line(doc, key),
                          hint=f"known keys: {', '.join(sorted(_TOP_KEYS))}")
    kafka = _parse_kafka(doc.get("kafka"), file) if doc.get("kafka") is not None else None
    mqtt = _parse_mqtt(doc.get("mqtt"), file) if doc.get("mqtt") is not None else None
    topics = doc.get("topics")
    if topics is None:
        bindings = default_bindings("kafka" if kafka is not None or mqtt is None else "mqtt")
    else:
        if not isinstance(topics, list):
            raise ConfigError("'topics' must be a list of topic bindings", file=file,
                              line=_line(doc, "topics"))
        bindings = [_parse_binding(item, i, file, default_source="mqtt" if
                                   (mqtt is not None and kafka is None) else "kafka")
                    for i, item in enumerate(topics)]
    detectors = doc.get("detectors") or {}
    if not isinstance(detectors, dict):
        raise ConfigError("'detectors' must map detector kinds to parameters", file=file,
                          line=_line(doc, "detectors"))
    state = doc.get("state") or {}
    if not isinstance(state, dict) or set(state) - {"checkpoint_interval", "checkpoints"}:
        raise ConfigError("'state' takes checkpoint_interval (seconds) and checkpoints "
                          "(true/false)", file=file, line=_line(doc, "state"))
    interval = state.get("checkpoint_interval", 10.0)
    if not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError("state.checkpoint_interval must be a positive number of seconds",
                          file=file, line=_line(state, "checkpoint_interval"))
    config = Config(bindings=bindings, kafka=kafka, mqtt=mqtt, detectors=dict(detectors),
                    checkpoint_interval=float(interval),
                    checkpoints=bool(state.get("checkpoints", True)),
                    notify=dict(doc.get("notify") or {}),
                    state_dir=Path(doc.get("state_dir") or "streamproc-data"), file=file,
                    raw=doc)
    _validate_detectors(config, doc)
    return config


def default_bindings(source: str = "kafka") -> list[Binding]:
    # The default topics are produced keyed by their contract key (streamproc produce,
    # the agent, the samples), so their keyed detectors need no repartitioning.
    return [Binding(name=c.family, family=c.family, contract=c, source=source,
                    topic=c.kafka_topic, mqtt_topic=c.mqtt_topic,
                    keyed_by=c.key[0] if c.key else None)
            for c in builtin_contracts().values()]


def _expect_mapping(node: Any, what: str, file: str | None, line: int | None) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ConfigError(f"{what} must be a mapping", file=file, line=line)
    return node


def _parse_kafka(node: Any, file: str | None) -> KafkaConfig:
    node = _expect_mapping(node, "'kafka'", file, _line(node))
    known = set(KafkaConfig.__slots__) - {"embedded"}  # type: ignore[attr-defined]
    for key in node:
        if key not in known:
            raise ConfigError(f"unknown kafka setting {key!r}", file=file, line=_line(node, key),
                              hint=f"known settings: {', '.join(sorted(known))}")
    if "bootstrap_servers" not in node:
        raise ConfigError("kafka.bootstrap_servers is required", file=file, line=_line(node),
                          hint="e.g. bootstrap_servers: kafka:9092 (omit 'kafka' entirely to "
                               "run the embedded broker)")
    values = dict(node)
    if isinstance(values["bootstrap_servers"], list):
        values["bootstrap_servers"] = ",".join(values["bootstrap_servers"])
    protocol = str(values.get("security_protocol", "PLAINTEXT")).upper()
    if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ConfigError(f"kafka.security_protocol {protocol!r} is not supported", file=file,
                          line=_line(node, "security_protocol"),
                          hint="use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    values["security_protocol"] = protocol
    mech = values.get("sasl_mechanism")
    if mech is not None and str(mech).upper() not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise ConfigError(f"kafka.sasl_mechanism {mech!r} is not supported", file=file,
                          line=_line(node, "sasl_mechanism"),
                          hint="use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    if mech is not None:
        values["sasl_mechanism"] = str(mech).upper()
    if protocol.startswith("SASL") and not (values.get("sasl_username")
                                             and values.get("sasl_password")):
        raise ConfigError("SASL needs kafka.sasl_username and kafka.sasl_password", file=file,
                          line=_line(node, "security_protocol"))
    app = str(values.get("application_id") or values.get("group_id", DEFAULT_GROUP_ID))
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", app):
        key = "application_id" if values.get("application_id") else "group_id"
        raise ConfigError(f"kafka.{key} {app!r} cannot prefix topic names", file=file,
                          line=_line(node, key),
                          hint="internal topics are named <application_id>.<what>: use letters, "
                               "digits, '.', '_' and '-' (set kafka.application_id if the "
                               "group id must differ)")
    reset = values.get("auto_offset_reset", "earliest")
    if reset not in ("earliest", "latest"):
        raise ConfigError(f"kafka.auto_offset_reset must be earliest or latest, not {reset!r}",
                          file=file, line=_line(node, "auto_offset_reset"))
    return KafkaConfig(**values)


def _parse_mqtt(node: Any, file: str | None) -> MqttConfig:
    node = _expect_mapping(node, "'mqtt'", file, _line(node))
    known = set(MqttConfig.__slots__)  # type: ignore[attr-defined]
    for key in node:
        if key not in known:
            raise ConfigError(f"unknown mqtt setting {key!r}", file=file, line=_line(node, key),
                              hint=f"known settings: {', '.join(sorted(known))}")
    values = dict(node)
    values["protocol"] = str(values.get("protocol", "5"))
    if values["protocol"] not in ("5", "3.1.1", "311"):
        raise ConfigError(f"mqtt.protocol must be 5 or 3.1.1, not {values['protocol']!r}",
                          file=file, line=_line(node, "protocol"))
    if values.get("qos", 1) not in (0, 1):
        raise ConfigError("mqtt.qos must be 0 or 1", file=file, line=_line(node, "qos"),
                          hint="QoS 2 costs two round trips per message and buys nothing "
                               "here: alerts are deduplicated by fingerprint")
    if values.get("tls") is True:
        values["tls"] = {}
    return MqttConfig(**values)


_BINDING_KEYS = {"name", "topic", "pattern", "family", "source", "mqtt_topic", "format",
                 "fields", "allowed_lateness", "max_record_bytes", "detectors", "keyed_by"}


def _parse_binding(node: Any, index: int, file: str | None, default_source: str) -> Binding:
    where = f"topics[{index}]"
    node = _expect_mapping(node, where, file, _line(node))
    line = _line(node)
    for key in node:
        if key not in _BINDING_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}", file=file, line=_line(node, key),
                              hint=f"known keys: {', '.join(sorted(_BINDING_KEYS))}")
    if "family" not in node:
        raise ConfigError(f"{where}: 'family' is required", file=file, line=line,
                          hint=f"one of {', '.join(sorted(builtin_contracts()))}")
    try:
        contract = get_contract(str(node["family"]))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", file=file, line=_line(node, "family"),
                          hint=exc.hint) from None
    source = str(node.get("source", default_source))
    if source not in ("kafka", "mqtt"):
        raise ConfigError(f"{where}: source must be kafka or mqtt", file=file,
                          line=_line(node, "source"))
    topic, pattern = node.get("topic"), node.get("pattern")
    if topic is not None and pattern is not None:
        raise ConfigError(f"{where}: give 'topic' or 'pattern', not both", file=file, line=line)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}: pattern is not a valid regex: {exc}", file=file,
                              line=_line(node, "pattern")) from None
    if source == "kafka" and topic is None and pattern is None:
        topic = contract.kafka_topic
    mqtt_topic = node.get("mqtt_topic")
    if source == "mqtt" and mqtt_topic is None:
        mqtt_topic = topic if topic is not None else contract.mqtt_topic
    fmt = str(node.get("format", "json"))
    if fmt not in ("json", "combined"):
        raise ConfigError(f"{where}: format must be json or combined (nginx/Apache access "
                          f"log lines)", file=file, line=_line(node, "format"))
    if fmt == "combined" and contract.family != "api-access-logs":
        raise ConfigError(f"{where}: format combined only applies to family api-access-logs",
                          file=file, line=_line(node, "format"))
    mapping = None
    if node.get("fields"):
        fields = node["fields"]
        if not isinstance(fields, dict):
            raise ConfigError(f"{where}.fields must map contract fields to paths", file=file,
                              line=_line(node, "fields"))
        for fname in fields:
            if fname not in contract.fields:
                raise ConfigError(f"{where}.fields: {fname!r} is not a field of "
                                  f"{contract.family}", file=file, line=_line(fields, fname),
                                  hint=f"fields: {', '.join(contract.fields)}")
        try:
            mapping = FieldMapping(dict(fields), where=f"{where}.fields")
        except ConfigError as exc:
            raise ConfigError(exc.message, file=file, line=_line(fields), hint=exc.hint) \
                from None
    detectors = node.get("detectors") or {}
    if not isinstance(detectors, dict):
        raise ConfigError(f"{where}.detectors must map detector kinds to parameters",
                          file=file, line=_line(node, "detectors"))
    lateness = node.get("allowed_lateness", 60)
    if not isinstance(lateness, int | float) or lateness < 0:
        raise ConfigError(f"{where}.allowed_lateness must be a number of seconds >= 0",
                          file=file, line=_line(node, "allowed_lateness"))
    keyed_by = node.get("keyed_by")
    if keyed_by is not None and keyed_by not in contract.fields:
        raise ConfigError(f"{where}: keyed_by {keyed_by!r} is not a field of {contract.family}",
                          file=file, line=_line(node, "keyed_by"),
                          hint="name the field your producer uses as the record key, or leave "
                               "keyed_by out if records are not keyed (streamproc then "
                               "repartitions what it needs)")
    name = str(node.get("name") or topic or pattern or mqtt_topic or contract.family)
    return Binding(name=name, family=contract.family, contract=contract, source=source,
                   topic=topic, pattern=pattern, mqtt_topic=mqtt_topic, format=fmt,
                   mapping=mapping, allowed_lateness=float(lateness),
                   max_record_bytes=int(node.get("max_record_bytes", 1024 * 1024)),
                   detectors={k: dict(v or {}) for k, v in detectors.items()}, line=line,
                   keyed_by=keyed_by)


def _validate_detectors(config: Config, doc: dict[str, Any]) -> None:
    """Instantiate every detector once so bad parameters fail at load time, with a line."""
    from .detectors import build_detectors

    for binding in config.bindings:
        try:
            build_detectors(config, binding)
        except ConfigError as exc:
            raise ConfigError(f"topic binding {binding.name!r}: {exc.message}", file=config.file,
                              line=binding.line or _line(doc, "detectors"), hint=exc.hint) \
                from None
