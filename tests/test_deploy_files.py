"""docker-compose.yml and the Dockerfile describe a working deployment (no Docker engine
here, so they are parsed and checked, not run)."""

from __future__ import annotations

from pathlib import Path

import yaml

from streamproc.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_kafka_in_kraft_mode_mosquitto_and_streamproc() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"kafka", "mosquitto", "streamproc"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert "9092:9092" in kafka["ports"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto")
    assert "1883:1883" in services["mosquitto"]["ports"]
    sp = services["streamproc"]
    assert sp["build"] == "."
    assert "9108:9108" in sp["ports"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in sp["volumes"] if m.startswith("./")}
    assert mounts["/etc/streamproc/streamproc.yaml"] == "./deploy/streamproc.yaml"
    for host_path in mounts.values():
        assert (ROOT / host_path).exists(), host_path
    for mount in services["mosquitto"]["volumes"]:
        assert (ROOT / mount.split(":")[0]).exists()


def test_compose_config_is_a_valid_streamproc_config() -> None:
    config = load_config(ROOT / "deploy" / "streamproc.yaml")
    assert config.kafka is not None and config.kafka.bootstrap_servers == "kafka:9092"
    assert config.mqtt is not None and config.mqtt.host == "mosquitto"
    families = {b.family for b in config.bindings}
    assert len(families) == 6


def test_mosquitto_config_sets_queue_limits_deliberately() -> None:
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    assert "max_queued_messages" in conf and "max_inflight_messages" in conf


def test_dockerfile_installs_the_package_and_runs_streamproc() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text and 'ENTRYPOINT ["streamproc"]' in text
    assert "USER streamproc" in text
