"""docker-compose.yml and the Dockerfile describe a working deployment (no Docker engine
here, so they are parsed and checked, not run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from streamproc.config import load_config
from tests.paths import REPO

ROOT = REPO


def test_compose_has_kafka_in_kraft_mode_mosquitto_and_streamproc() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"kafka", "mosquitto", "streamproc"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert any(str(port).startswith("127.0.0.1:9092:") for port in kafka["ports"])
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto")
    assert "127.0.0.1:1883:1883" in services["mosquitto"]["ports"]
    sp = services["streamproc"]
    assert sp["build"] == "."
    assert "127.0.0.1:9108:9108" in sp["ports"]
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


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_every_published_port_is_bound_to_loopback() -> None:
    published = [
        (name, port)
        for name, service in _compose()["services"].items()
        for port in service.get("ports", [])
    ]
    assert published  # Kafka, Mosquitto and the metrics are published, on loopback only
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_every_host_the_deploy_config_names_is_a_compose_service() -> None:
    services = set(_compose()["services"])
    config = load_config(ROOT / "deploy" / "streamproc.yaml")
    assert config.kafka is not None and config.mqtt is not None
    hosts = {server.rsplit(":", 1)[0] for server in config.kafka.bootstrap_servers.split(",")}
    hosts.add(config.mqtt.host)
    apprise_files = config.notify["apprise_config"]
    for path in [apprise_files] if isinstance(apprise_files, str) else apprise_files:
        for entry in yaml.safe_load(Path(path).read_text())["urls"]:
            url = entry if isinstance(entry, str) else next(iter(entry))
            hosts.add(urlsplit(url).hostname or "")
    for entry in config.notify.get("urls") or []:
        hosts.add(urlsplit(entry if isinstance(entry, str) else entry["url"]).hostname or "")
    assert hosts <= services, hosts - services


def test_compose_mounts_the_apprise_config_next_to_the_config_that_names_it() -> None:
    sp = _compose()["services"]["streamproc"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in sp["volumes"] if m.startswith("./")}
    config_in_container = Path(mounts["./deploy/streamproc.yaml"])
    apprise = yaml.safe_load((ROOT / "deploy" / "streamproc.yaml").read_text())["notify"][
        "apprise_config"
    ]
    assert not Path(apprise).is_absolute()
    assert mounts[f"./deploy/{apprise}"] == str(config_in_container.parent / apprise)


def test_check_config_passes_on_the_deploy_config_from_the_repo_root_and_from_deploy() -> None:
    for cwd, path in ((ROOT, "deploy/streamproc.yaml"), (ROOT / "deploy", "streamproc.yaml")):
        proc = subprocess.run(
            [sys.executable, "-m", "streamproc.commands.cli", "check-config", "-c", path],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "json json://" in proc.stdout  # the webhook receiver's channel was loaded


def test_the_compose_webhook_receiver_prints_what_apprise_sends_it() -> None:
    import apprise

    service = _compose()["services"]["webhook-receiver"]
    script = next(m.split(":")[0] for m in service["volumes"] if m.split(":")[0].endswith(".py"))
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / script), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        sender = apprise.Apprise()
        sender.add(f"json://127.0.0.1:{port}/alerts")
        assert sender.notify(title="brute_force on alice", body="5 failed logins")
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    assert '"path": "/alerts"' in line and "brute_force on alice" in line


def test_the_container_opens_its_metrics_to_the_published_port_by_saying_so() -> None:
    # streamproc's metrics listen on loopback by default; inside a container that port could
    # not be published, so compose and the image ask for every interface of the container
    # (compose still publishes it on the host's 127.0.0.1 only).
    command = _compose()["services"]["streamproc"]["command"]
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert '"--metrics-port", "9108", "--metrics-host", "0.0.0.0"' in cmd


def _listeners(setting: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as {NAME: (host, port)}."""
    out = {}
    for item in setting.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_compose_kafka_hands_each_client_an_address_it_can_reach() -> None:
    # A Kafka client connects to the bootstrap address, then to the address the broker
    # advertises for that listener: on the host that must be the published loopback port,
    # on the compose network the service name.
    kafka = _compose()["services"]["kafka"]
    env = kafka["environment"]
    listening = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    by_port = {port: name for name, (_, port) in listening.items()}
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listening) <= set(protocols)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for published in kafka["ports"]:
        address, host_port, container_port = str(published).split(":")
        name = by_port[int(container_port)]
        assert advertised[name] == (address, int(host_port)), (published, advertised[name])
    config = load_config(ROOT / "deploy" / "streamproc.yaml")
    assert config.kafka is not None
    for server in config.kafka.bootstrap_servers.split(","):
        host, _, port = server.rpartition(":")
        assert host in ("kafka", kafka.get("hostname"))
        assert advertised[by_port[int(port)]] == (host, int(port))
