"""Secrets never appear in log output: Apprise URL credentials and tokens, password pairs,
and the SASL/MQTT passwords registered at startup; in text and JSON formats alike."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from streamproc.ops.logs import setup_logging
from streamproc.ops.redact import (
    clear_secrets,
    redact_text,
    redact_url,
    register_secret,
    service_name,
)

SLACK_TOKENS = ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ")
SLACK_URL = "slack://{}/{}/{}/#alerts".format(*SLACK_TOKENS)
MAIL_PASSWORD = "m4il-Pa55word"
MAIL_URL = f"mailto://alerts:{MAIL_PASSWORD}@smtp.example.com/?to=oncall@example.com"
JSON_TOKEN = "qT7vWx9Lr2Zk"
JSON_URL = f"json://127.0.0.1:8080/hook?token={JSON_TOKEN}"
TGRAM_TOKEN = "123456789:AAHfLk0Zq1B2c3D4e5F6g7H8i9J0kLmNoPq"
TGRAM_URL = f"tgram://{TGRAM_TOKEN}/-100123"
SASL_PASSWORD = "kafka-S3cr3t!pw"
MQTT_PASSWORD = "mqtt p@ss/w0rd"  # a space, an @ and a slash: URL-encoding changes it

SECRETS = (
    *SLACK_TOKENS,
    MAIL_PASSWORD,
    JSON_TOKEN,
    TGRAM_TOKEN,
    SASL_PASSWORD,
    MQTT_PASSWORD,
    "AAHfLk0Zq1B2c3D4e5F6g7H8i9J0kLmNoPq",
)


@pytest.fixture
def secrets_registered() -> Iterator[None]:
    register_secret(SASL_PASSWORD)
    register_secret(MQTT_PASSWORD)
    yield
    clear_secrets()


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def _emit_everything(log: logging.Logger) -> None:
    log.info("delivering to %s", SLACK_URL)
    log.warning("apprise failed for %s and %s", MAIL_URL, JSON_URL)
    log.error("notify config %r", {"urls": [TGRAM_URL], "password": MAIL_PASSWORD})
    log.error("kafka connect failed: sasl_password=%s mechanism=SCRAM-SHA-512", SASL_PASSWORD)
    log.error("mqtt auth failed for user streamproc with %s", MQTT_PASSWORD)
    log.info("encoded: mqtt://streamproc:%s@broker.example.com:8883", "mqtt%20p%40ss%2Fw0rd")
    log.info("headers: Authorization: Bearer %s", JSON_TOKEN)
    log.info("delivery", extra={"channel_url": SLACK_URL, "detail": f"password={SASL_PASSWORD}"})
    try:
        raise ConnectionError(f"cannot reach {MAIL_URL} (password {MQTT_PASSWORD})")
    except ConnectionError:
        log.exception("delivery crashed")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_known_secret_appears_in_formatted_log_output(
    fmt: str, secrets_registered: None, root_restored: None
) -> None:
    out = io.StringIO()
    setup_logging("DEBUG", fmt, stream=out)
    _emit_everything(logging.getLogger("streamproc.test.redaction"))
    text = out.getvalue()
    assert text.count("\n") >= 9  # every record was written, redacted rather than dropped
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {fmt} log output"
    # What remains is still useful to an operator.
    assert "slack://***" in text
    assert "mailto://smtp.example.com/***" in text
    assert "json://127.0.0.1:8080/***" in text
    assert "delivery crashed" in text and "ConnectionError" in text


def test_redaction_also_covers_handlers_installed_before_setup(
    secrets_registered: None, root_restored: None
) -> None:
    early = io.StringIO()
    handler = logging.StreamHandler(early)
    logging.getLogger().addHandler(handler)
    try:
        setup_logging("INFO", "text", stream=io.StringIO())
        logging.getLogger("streamproc.test").warning("password is %s", SASL_PASSWORD)
    finally:
        logging.getLogger().removeHandler(handler)
    assert SASL_PASSWORD not in early.getvalue()
    assert "***" in early.getvalue()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (SLACK_URL, "slack://***"),
        (MAIL_URL, "mailto://smtp.example.com/***"),
        (JSON_URL, "json://127.0.0.1:8080/***"),
        (TGRAM_URL, "tgram://***"),
        ("json://127.0.0.1:8080", "json://127.0.0.1:8080"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/***"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://***"),
        ("pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi", "pover://***"),
        ("mailto://user:p/w@host.example.com", "mailto://***"),
    ],
)
def test_redact_url_keeps_only_scheme_and_a_plain_host(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_registered_secret_is_masked_in_its_url_encoded_form_too(secrets_registered: None) -> None:
    assert "p%40ss" not in redact_text("user=streamproc pw mqtt%20p%40ss%2Fw0rd")


def test_short_values_are_not_registered_as_secrets() -> None:
    register_secret("ab")
    try:
        assert redact_text("tab about") == "tab about"
    finally:
        clear_secrets()


def test_service_name_never_returns_a_token() -> None:
    assert service_name(SLACK_URL) == "slack"
    assert service_name("json") == "json"
    assert service_name("some thing/with:odd chars") == "unknown"


def test_config_secrets_are_masked_even_when_a_library_prints_a_token_alone() -> None:
    from streamproc.config import parse_config_text
    from streamproc.ops.redact import register_config_secrets

    config = parse_config_text(
        "mqtt:\n  host: 127.0.0.1\n  username: sp\n  password: Mqtt-Pw-31337\n"
        "notify:\n"
        f"  urls:\n    - {SLACK_URL}\n    - {JSON_URL}\n"
        f"    - {{url: '{TGRAM_URL}', tags: [ops]}}\n"
    )
    try:
        register_config_secrets(config)
        for secret in ("Mqtt-Pw-31337", SLACK_TOKENS[2], JSON_TOKEN, TGRAM_TOKEN):
            assert secret not in redact_text(f"sending with {secret} now"), secret
        # ordinary words in the same URLs stay readable
        assert redact_text("POST /hook to channel alerts") == "POST /hook to channel alerts"
    finally:
        clear_secrets()
