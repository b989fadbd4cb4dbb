"""Loading a config: ``${NAME}`` is replaced in parsed values only (a variable's value can never
rewrite the document), and relative paths resolve against the config file's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamproc.config import load_config, parse_config_text
from streamproc.errors import ConfigError, ConfigErrors
from streamproc.notify.channels import load_channels
from streamproc.notify.settings import parse_settings

SASL = """\
kafka:
  bootstrap_servers: 127.0.0.1:9092
  security_protocol: SASL_PLAINTEXT
  sasl_username: ${KUSER:-streamproc}
  sasl_password: ${KPW}
"""


def test_env_value_with_a_hash_is_kept_whole_not_cut_at_a_comment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KPW", "abc #def")
    config = parse_config_text(SASL)
    assert config.kafka is not None and config.kafka.sasl_password == "abc #def"


def test_env_value_with_a_newline_cannot_add_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPW", "pw\n  sasl_username: injected")
    config = parse_config_text(SASL)
    assert config.kafka is not None
    assert config.kafka.sasl_username == "streamproc"
    assert config.kafka.sasl_password == "pw\n  sasl_username: injected"


def test_env_value_with_yaml_syntax_stays_one_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPW", "{a: 1}, [b]")
    monkeypatch.setenv("CID", "x\ntopics: []")
    text = SASL + "  client_id: ${CID}\n"
    config = parse_config_text(text)
    assert config.kafka is not None
    assert config.kafka.sasl_password == "{a: 1}, [b]"
    assert config.kafka.client_id == "x\ntopics: []"
    assert len(config.bindings) == 6  # no 'topics' key was injected


def test_env_value_is_not_expanded_a_second_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPW", "${HOME}")
    config = parse_config_text(SASL)
    assert config.kafka is not None and config.kafka.sasl_password == "${HOME}"


def test_env_reference_in_a_comment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMPROC_TEST_UNSET", raising=False)
    config = parse_config_text(
        "kafka:  # password: ${STREAMPROC_TEST_UNSET}\n"
        "  bootstrap_servers: 127.0.0.1:9092  # ${STREAMPROC_TEST_UNSET}\n"
    )
    assert config.kafka is not None


def test_env_default_and_a_reference_inside_a_flow_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMPROC_TEST_UNSET", raising=False)
    monkeypatch.setenv("MHOST", "edge.example.com")
    config = parse_config_text("mqtt: {host: ${MHOST}, client_id: ${STREAMPROC_TEST_UNSET:-sp}}\n")
    assert config.mqtt is not None
    assert (config.mqtt.host, config.mqtt.client_id) == ("edge.example.com", "sp")


def test_numeric_broker_settings_read_a_variable_holding_a_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MPORT", "8883")
    config = parse_config_text("mqtt:\n  host: 127.0.0.1\n  port: ${MPORT}\n")
    assert config.mqtt is not None and config.mqtt.port == 8883
    monkeypatch.setenv("MPORT", "eighty")
    with pytest.raises(ConfigError) as err:
        parse_config_text("mqtt:\n  host: 127.0.0.1\n  port: ${MPORT}\n", file="c.yaml")
    assert str(err.value).startswith("c.yaml:3: mqtt.port must be a number")


def test_missing_variable_names_its_line_even_inside_a_flow_mapping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STREAMPROC_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_config_text(
            "mqtt:\n  host: h\n  tls: {ca_file: ${STREAMPROC_TEST_UNSET}}\n", file="c.yaml"
        )
    assert str(err.value).startswith("c.yaml:3: environment variable STREAMPROC_TEST_UNSET")


def test_apprise_config_variable_with_a_newline_cannot_add_a_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", "tok\n  - json://127.0.0.2:9/evil")
    yml = tmp_path / "apprise.yml"
    yml.write_text("urls:\n  - json://127.0.0.1:9/${HOOK}:\n      tag: dev\n")
    errors: list[ConfigError] = []
    channels, _ = load_channels(parse_settings({"apprise_config": str(yml)}), errors=errors)
    assert channels == []  # one URL with a newline in its path: Apprise rejects it
    assert [f"{e.file}:{e.line}" for e in errors] == [f"{yml}:2"]
    txt = tmp_path / "apprise.txt"
    txt.write_text("dev=json://127.0.0.1:9/${HOOK}\n")
    with pytest.raises(ConfigError, match="line break"):
        load_channels(parse_settings({"apprise_config": str(txt)}))


# -- relative paths ---------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "apprise.yml").write_text("urls:\n  - json://127.0.0.1:9/hook:\n      tag: dev\n")
    (folder / "streamproc.yaml").write_text(
        "mqtt:\n  host: 127.0.0.1\n  dead_letter_file: dl/mqtt.jsonl\n"
        "  tls: {ca_file: certs/ca.pem}\n"
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n  ssl_cafile: certs/kafka-ca.pem\n"
        "notify:\n  apprise_config: [apprise.yml]\n"
        "state_dir: data\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, elsewhere, folder):
        monkeypatch.chdir(cwd)
        config = load_config(os.path.relpath(folder / "streamproc.yaml", cwd))
        assert config.state_dir == folder / "data"
        assert config.mqtt is not None and config.kafka is not None
        assert config.mqtt.dead_letter_file == str(folder / "dl" / "mqtt.jsonl")
        assert config.mqtt.tls == {"ca_file": str(folder / "certs" / "ca.pem")}
        assert config.kafka.ssl_cafile == str(folder / "certs" / "kafka-ca.pem")
        assert config.notify["apprise_config"] == [str(folder / "apprise.yml")]
        channels, _ = load_channels(parse_settings(config.notify))
        assert [sorted(c.tags) for c in channels] == [["dev"]]


def test_absolute_paths_and_unset_defaults_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text("mqtt:\n  host: 127.0.0.1\n  tls: {ca_file: /etc/ssl/ca.pem}\n")
    config = load_config(path)
    assert config.mqtt is not None and config.mqtt.tls == {"ca_file": "/etc/ssl/ca.pem"}
    assert config.mqtt.dead_letter_file == "streamproc-deadletters.jsonl"
    assert config.state_dir == Path("streamproc-data")


def test_a_variable_saying_false_turns_a_switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSECURE", "false")
    monkeypatch.setenv("CHECKPOINTS", "false")
    config = parse_config_text(
        "mqtt:\n  host: 127.0.0.1\n  tls: {insecure: ${INSECURE}}\n"
        "state: {checkpoints: ${CHECKPOINTS}}\n"
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n"
        "  ssl_check_hostname: ${INSECURE}\n"
    )
    assert config.mqtt is not None and config.mqtt.tls == {"insecure": False}
    assert config.checkpoints is False
    assert config.kafka is not None and config.kafka.ssl_check_hostname is False


def test_notify_switches_read_false_from_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUSH", "false")
    config = parse_config_text(
        "notify:\n  flush_on_close: ${FLUSH}\n  default_routes: ${FLUSH}\n  routes: []\n"
    )
    settings = parse_settings(config.notify)
    assert settings.flush_on_close is False and settings.default_routes is False


def test_every_section_in_error_is_raised_together_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "streamproc.yaml"
    path.write_text(
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n  group_idd: x\n"
        "mqtt:\n  qos: 2\n"
        "detectors: [brute_force]\n"
        "state:\n  checkpoints: maybe\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    assert [(e.line, e.message.split(" ")[0]) for e in info.value.errors] == [
        (3, "unknown"),
        (5, "mqtt.qos"),
        (6, "'detectors'"),
        (8, "state.checkpoints"),
    ]


def test_a_kafka_section_in_error_leaves_the_bindings_on_kafka_and_adds_nothing() -> None:
    errors: list[ConfigError] = []
    config = parse_config_text(
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n  group_idd: x\n"
        "mqtt:\n  host: 127.0.0.1\n"
        "topics:\n  - topic: auth\n    family: auth-logs\n",
        file="c.yaml",
        errors=errors,
    )
    assert [str(e).split(";")[0] for e in errors] == ["c.yaml:3: unknown kafka setting 'group_idd'"]
    assert [b.source for b in config.bindings] == ["kafka"]


@pytest.mark.parametrize(
    "family, rule, line_says",
    [
        (
            "auth-logs",
            "success: {path: outcome, map: {ok: true, bad: maybe}}",
            "success: map value of 'bad': expected a boolean, got the string 'maybe'",
        ),
        ("api-access-logs", "status_code: {path: code, value: ok}", "code: value: expected an"),
        ("cicd-events", "type: {path: kind, map: {job: build}}", "of 'job': field 'type'"),
        ("auth-logs", "timestamp: {path: when, value: yesterday}", "timestamp: value: "),
    ],
)
def test_a_mapping_constant_the_field_cannot_hold_is_a_config_error(
    family: str, rule: str, line_says: str
) -> None:
    """A value or map value of the wrong type would dead-letter every record it reaches:
    the config says so at its line instead."""
    text = f"topics:\n  - topic: t\n    family: {family}\n    fields:\n      {rule}\n"
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, file="c.yaml")
    message = str(err.value)
    assert message.startswith("c.yaml:5: topics[0].fields.") and line_says in message, message


def test_mapping_constants_the_decoder_coerces_are_taken() -> None:
    config = parse_config_text(
        "topics:\n  - topic: t\n    family: auth-logs\n    fields:\n"
        "      success: {path: outcome, map: {ok: 'true', bad: 0, unknown: null}}\n"
        "      country: {path: geo, value: 42}\n"
        "      timestamp: {path: when, value: '2026-01-01T00:00:00Z'}\n"
    )
    assert config.bindings[0].mapping is not None
