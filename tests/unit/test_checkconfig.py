"""``streamproc check-config``: a valid config prints what it will do; an invalid one exits 1
with ``file:line: what is wrong, how to fix it`` pointing at the offending line."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.commands.cli import main as cli

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
VALID = f"""\
kafka:
  bootstrap_servers: kafka-1:9092
  security_protocol: SASL_SSL
  sasl_mechanism: SCRAM-SHA-512
  sasl_username: streamproc
  sasl_password: Sup3r-Secret-pw
topics:
  - topic: ecs-auth
    family: auth-logs
    fields:
      timestamp: "@timestamp"
      username: user.name
    detectors:
      brute_force: {{threshold: 10, window: 1800}}
  - pattern: "^web-.*$"
    family: api-access-logs
notify:
  urls:
    - json://127.0.0.1:9/hook?token=tok3n-abc
    - {{url: "{SLACK}", tags: [security-team]}}
"""


def run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "streamproc.yaml"
    path.write_text(text)
    rc = cli(["check-config", "-c", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_error_at(tmp_path: Path, err: str, line: int, words: str) -> None:
    first = err.strip().splitlines()[0]
    assert first.startswith(f"{tmp_path / 'streamproc.yaml'}:{line}: "), first
    assert words in first, first


def test_valid_config_exits_0_and_prints_bindings_detectors_channels_and_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(tmp_path, VALID, capsys)
    assert rc == 0, err
    assert "valid" in out.splitlines()[0]
    assert "kafka ecs-auth -> auth-logs (json, lateness 60s, fields mapped)" in out
    assert "kafka /^web-.*$/ -> api-access-logs" in out
    assert "brute_force [high]" in out and "threshold=10" in out and "window=1800" in out
    assert "json json://127.0.0.1:9 (every alert)" in out
    assert "slack slack://*** (tags: security-team)" in out
    assert "routes" in out
    assert "SCRAM-SHA-512 user streamproc, password set" in out


def test_output_never_shows_a_password_or_url_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(tmp_path, VALID, capsys)
    assert rc == 0
    for secret in ("Sup3r-Secret-pw", "tok3n-abc", "TIiajkdnlazkcOXrIdevi7FQ", "T1JJ3T3L2"):
        assert secret not in out + err


def test_no_config_shows_the_builtin_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "(built-in defaults)" in out and "embedded" in out
    for family in (
        "auth-logs",
        "api-access-logs",
        "host-metrics",
        "cicd-events",
        "support-tickets",
        "business-metrics",
    ):
        assert f"-> {family}" in out


def test_bad_yaml_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(tmp_path, "kafka:\n  bootstrap_servers: a:1\ntopics:\n  - topic: [x\n", capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 5, "not valid YAML")


def test_unknown_top_level_key_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run(tmp_path, "kafka:\n  bootstrap_servers: a:1\n\ndetector:\n  x: 1\n", capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 4, "unknown top-level key 'detector'")
    assert "known keys" in err


def test_unknown_kafka_setting_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = run(tmp_path, "kafka:\n  bootstrap_servers: a:1\n  sasl_pasword: x\n", capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 3, "unknown kafka setting 'sasl_pasword'")


def test_bad_detector_parameter_names_its_binding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "topics:\n"
        "  - topic: auth\n"
        "    family: auth-logs\n"
        "  - topic: ecs-auth\n"
        "    family: auth-logs\n"
        "    detectors:\n"
        "      brute_force: {treshold: 10}\n"
    )
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 4, "has no parameter treshold")
    assert "known parameters" in err


def test_detector_parameter_of_the_wrong_type_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "topics:\n  - topic: auth\n    family: auth-logs\n"
        "    detectors:\n      brute_force: {threshold: ten}\n"
    )
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 2, "'threshold' must be like 5")


def test_bad_topic_regex_names_the_pattern_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = 'topics:\n  - family: auth-logs\n    pattern: "^logs-(auth.*$"\n'
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 3, "not a valid regex")


def test_unknown_notify_key_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "notify:\n  urls: [json://127.0.0.1:9/x]\n  group_wiat: 10s\n"
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 3, "group_wiat")


def test_url_apprise_cannot_load_names_its_list_item_and_hides_its_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "notify:\n"
        "  urls:\n"
        "    - json://127.0.0.1:9/ok\n"
        "    - nosuchservice://user:Hidden-Pw-77@example.com/x\n"
    )
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 4, "notify.urls[1]")
    assert "Hidden-Pw-77" not in err


def test_missing_environment_variable_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STREAMPROC_TEST_UNSET", raising=False)
    text = "kafka:\n  bootstrap_servers: a:1\n  client_id: ${STREAMPROC_TEST_UNSET}\n"
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 3, "STREAMPROC_TEST_UNSET is not set")


def test_without_the_notify_package_apprise_still_validates_the_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "streamproc.notify.channels", None)  # ImportError
    rc, out, err = run(tmp_path, VALID, capsys)
    assert rc == 0, err
    assert "slack slack://*** (tags: security-team)" in out
    assert "not shown" in out  # routes need the notify package's router
    text = "notify:\n  urls:\n    - json://127.0.0.1:9/ok\n    - nosuchservice://u:Pw-9x@h/x\n"
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    assert_error_at(tmp_path, err, 4, "notify.urls[1]")
    assert "Pw-9x" not in err


def test_without_the_notify_package_apprise_config_files_are_still_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "streamproc.notify.channels", None)  # ImportError
    (tmp_path / "apprise.yml").write_text(
        "urls:\n  - json://127.0.0.1:9/first:\n      tag: security-team\n"
    )
    rc, out, err = run(tmp_path, "notify:\n  apprise_config: apprise.yml\n", capsys)
    assert rc == 0, err
    assert "json json://127.0.0.1:9/*** (tags: security-team)" in out


APPRISE_FIVE = """\
urls:
  - json://127.0.0.1:9/first:
      tag: security-team
  - nosuchservice://user:Hidden-Pw-77@example.com/x:
      tag: dev
  - json://127.0.0.1:9/third
  - slack://T1JJ3T3L2/Secr3tB:
      tag: oncall
  - mailto://:
      tag: support
"""


def test_every_apprise_config_entry_apprise_cannot_load_is_an_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apprise_file = tmp_path / "apprise.yml"
    apprise_file.write_text(APPRISE_FIVE)
    rc, out, err = run(tmp_path, "notify:\n  apprise_config: apprise.yml\n", capsys)
    assert rc == 1, out
    lines = err.strip().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{apprise_file}:4",
        f"{apprise_file}:7",
        f"{apprise_file}:9",
    ]
    assert all("Apprise cannot load" in line for line in lines)
    for secret in ("Hidden-Pw-77", "T1JJ3T3L2", "Secr3tB"):
        assert secret not in err


def test_notify_type_errors_are_all_reported_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "notify:\n"
        "  urls:\n"
        '    - {url: "json://127.0.0.1:9/a", tags: 5}\n'
        "    - json://127.0.0.1:9/b\n"
        "    - nosuchservice://u:Pw-9x@h/x\n"
        "  templates:\n"
        "    brute_force:\n"
        "      title: [a, b]\n"
        '      body: "$body"\n'
    )
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    places = [line.split(": ", 1) for line in err.strip().splitlines()]
    config = tmp_path / "streamproc.yaml"
    assert [(p, m.split(":")[0]) for p, m in places] == [
        (f"{config}:3", "notify.urls[0].tags"),
        (f"{config}:8", "notify.templates.brute_force.title"),
        (f"{config}:5", "notify.urls[2]"),
    ]
    assert "Traceback" not in err and "Pw-9x" not in err


def test_run_refuses_to_start_with_a_broken_apprise_entry(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "apprise.yml").write_text(APPRISE_FIVE)
    config = tmp_path / "streamproc.yaml"
    config.write_text("notify:\n  apprise_config: apprise.yml\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc.commands.cli", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert f"{tmp_path / 'apprise.yml'}:4: " in proc.stderr
    assert f"{tmp_path / 'apprise.yml'}:9: " in proc.stderr
    assert "Hidden-Pw-77" not in proc.stderr


def test_apprise_include_is_reported_not_silently_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "apprise.yml").write_text(
        "include:\n  - more.yml\nurls:\n  - json://127.0.0.1:9/a\n"
    )
    rc, _, err = run(tmp_path, "notify:\n  apprise_config: apprise.yml\n", capsys)
    assert rc == 1
    assert err.startswith(f"{tmp_path / 'apprise.yml'}:1: include is not followed")


def test_apprise_entry_error_masks_the_settings_under_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "apprise.yml").write_text(
        "urls:\n  - mailto://:\n      user: someone\n      pass: Sup3rS3cretPw\n"
        '      from: "not-an-email Sup3rS3cretPw"\n'
    )
    rc, _, err = run(tmp_path, "notify:\n  apprise_config: apprise.yml\n", capsys)
    assert rc == 1 and f"{tmp_path / 'apprise.yml'}:2: Apprise cannot load mailto://" in err
    assert "Sup3rS3cretPw" not in err and "someone" not in err


FOUR_SECTIONS_WRONG = """\
kafka:
  bootstrap_servers: 127.0.0.1:9092
  sasl_pasword: x
topics:
  - topic: auth
    family: auth-logs
  - family: auth-logs
    pattern: "^logs-(auth.*$"
state:
  checkpoint_interval: -5
alerts:
  max_byte: 65536
"""


def test_errors_in_four_sections_are_all_reported_each_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(tmp_path, FOUR_SECTIONS_WRONG, capsys)
    assert rc == 1 and out == ""
    config = tmp_path / "streamproc.yaml"
    places = [line.split(": ", 1) for line in err.strip().splitlines()]
    assert [(p, m.split(" ")[0:3]) for p, m in places] == [
        (f"{config}:3", ["unknown", "kafka", "setting"]),
        (f"{config}:8", ["topics[1]:", "pattern", "is"]),
        (f"{config}:10", ["state.checkpoint_interval", "must", "be"]),
        (f"{config}:12", ["unknown", "alerts", "setting"]),
    ]


def test_a_bad_default_for_every_binding_is_one_error_at_the_detectors_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "topics:\n"
        "  - topic: auth\n    family: auth-logs\n"
        "  - topic: ecs-auth\n    family: auth-logs\n"
        "  - topic: vpn-auth\n    family: auth-logs\n"
        "    detectors:\n      brute_force: {threshold: 5, window: soon}\n"
        "detectors:\n"
        "  brute_force: {threshold: ten}\n"
    )
    rc, _, err = run(tmp_path, text, capsys)
    assert rc == 1
    config = tmp_path / "streamproc.yaml"
    by_place = dict(line.split(": ", 1) for line in err.strip().splitlines())
    assert sorted(by_place) == [f"{config}:11", f"{config}:6"]  # brute_force under detectors:
    assert by_place[f"{config}:11"].startswith("detectors: ")
    assert "'threshold' must be like 5" in by_place[f"{config}:11"]
    assert "'window' must be like" in by_place[f"{config}:6"]


def test_run_refuses_to_start_with_every_error_of_every_section(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "metric: 1\n"
        + FOUR_SECTIONS_WRONG
        + "notify:\n  urls:\n    - nosuchservice://u:Pw-9x@h/x\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc.commands.cli", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    for line in (1, 4, 9, 11, 13, 16):
        assert f"{config}:{line}: " in proc.stderr, proc.stderr
    assert "Pw-9x" not in proc.stderr and "Traceback" not in proc.stderr
