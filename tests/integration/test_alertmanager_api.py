"""The Alertmanager API v2 of ``streamproc run --listen``, driven by the real ``amtool`` and
over plain HTTP, against a running demo (embedded broker, sample streams) with an API token.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamproc.ops.broker import free_port
from streamproc.ops.processes import stop_process
from tests.waiting import wait_until_sync

TOKEN = "demo-api-token-0123456789abcdef"
AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="amtool is not installed (Debian: apt-get install prometheus-alertmanager)",
)


@dataclass
class Demo:
    url: str
    cwd: Path
    http_config: Path  # amtool's --http.config.file with the bearer token
    proc: subprocess.Popen[bytes]


def call(
    method: str,
    url: str,
    body: bytes | None = None,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON or text)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw, kind = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in kind else raw.decode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    cwd = tmp_path_factory.mktemp("am-demo")
    config = cwd / "streamproc.yaml"
    config.write_text("api:\n  token: ${STREAMPROC_TEST_API_TOKEN}\n  max_body_bytes: 4096\n")
    http_config = cwd / "amtool-http.yml"
    http_config.write_text(f"authorization:\n  credentials: {TOKEN}\n")
    port = free_port()
    log = (cwd / "demo.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "run",
            "--demo",
            "-c",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=dict(os.environ, STREAMPROC_TEST_API_TOKEN=TOKEN),
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def brute_force_listed() -> bool:
            assert proc.poll() is None, (cwd / "demo.log").read_text()[-3000:]
            try:
                status, alerts = call("GET", url + "/api/v2/alerts?filter=alertname=brute_force")
            except OSError:
                return False
            return status == 200 and bool(alerts)

        wait_until_sync(
            brute_force_listed, 120, "the demo to list a brute_force alert", interval=0.5
        )
        yield Demo(url, cwd, http_config, proc)
    finally:
        stop_process(proc, 30)
        log.close()


def amtool(demo: Demo, *args: str) -> str:
    assert AMTOOL is not None
    proc = subprocess.run(
        [AMTOOL, f"--alertmanager.url={demo.url}", f"--http.config.file={demo.http_config}", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- the token --------------------------------------------------------------------------------


def test_the_api_needs_the_token_but_health_does_not(demo: Demo) -> None:
    status, body = call("GET", demo.url + "/api/v2/alerts", token=None)
    assert status == 401 and TOKEN not in str(body)
    assert call("GET", demo.url + "/api/v2/silences", token="wrong-token-0123456789")[0] == 401
    assert call("GET", demo.url + "/metrics", token=None)[0] == 401
    assert call("GET", demo.url + "/api/v2/alerts")[0] == 200
    for path in ("/-/healthy", "/-/ready", "/healthz", "/readyz"):
        assert call("GET", demo.url + path, token=None)[0] == 200, path


# -- amtool -----------------------------------------------------------------------------------


@needs_amtool
def test_amtool_alert_query_lists_the_demos_alerts(demo: Demo) -> None:
    out = amtool(demo, "alert", "query", "alertname=brute_force")
    assert out.splitlines()[0].split()[:2] == ["Alertname", "Starts"]
    assert "brute_force" in out and "Brute-force login attempt" in out
    alerts = json.loads(amtool(demo, "-o", "json", "alert", "query", "alertname=brute_force"))
    assert alerts and {a["labels"]["alertname"] for a in alerts} == {"brute_force"}
    first = alerts[0]
    assert {"username", "ip_address", "severity", "binding"} <= set(first["labels"])
    assert first["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    assert first["annotations"]["summary"].startswith("Brute-force login attempt")


@needs_amtool
def test_amtool_silences_an_alert_and_expires_the_silence(demo: Demo) -> None:
    sid = amtool(
        demo, "silence", "add", "alertname=brute_force", "-c", "pen test", "-d", "1h"
    ).strip()
    assert sid
    listed = amtool(demo, "silence", "query")
    assert sid in listed and 'alertname="brute_force"' in listed and "pen test" in listed
    # silenced: gone from the default query, shown with -s, and the API says by which
    assert "brute_force" not in amtool(demo, "alert", "query", "alertname=brute_force")
    assert "suppressed" in amtool(demo, "alert", "query", "-s", "alertname=brute_force")
    _, alerts = call("GET", demo.url + "/api/v2/alerts?filter=alertname%3Dbrute_force")
    assert alerts and all(a["status"]["silencedBy"] == [sid] for a in alerts)
    assert all(a["status"]["state"] == "suppressed" for a in alerts)
    # GET /silence/{id} and the JSON of silence query
    status, one = call("GET", f"{demo.url}/api/v2/silence/{sid}")
    assert status == 200 and one["status"]["state"] == "active" and one["createdBy"]
    assert [s["id"] for s in json.loads(amtool(demo, "-o", "json", "silence", "query"))] == [sid]

    amtool(demo, "silence", "expire", sid)
    assert sid not in amtool(demo, "silence", "query")
    assert sid in amtool(demo, "silence", "query", "--expired")
    assert "brute_force" in amtool(demo, "alert", "query", "alertname=brute_force")


# -- bad input --------------------------------------------------------------------------------


def test_bad_input_gets_alertmanagers_answers(demo: Demo) -> None:
    status, body = call("GET", demo.url + "/api/v2/alerts?filter=%7Balertname%3D")
    assert status == 400 and body.startswith("bad matcher format: ")  # a JSON string
    assert call("GET", demo.url + "/api/v2/alerts?active=maybe")[0] == 400
    assert call("GET", demo.url + "/api/v2/silences?filter=a%3D%3D")[0] == 400
    silences = demo.url + "/api/v2/silences"
    status, body = call("POST", silences, b"{not json")
    assert status == 400 and body.startswith("the body is not JSON")
    status, body = call(
        "POST",
        silences,
        json.dumps(
            {
                "matchers": [],
                "startsAt": "2030-01-01T00:00:00Z",
                "endsAt": "2030-01-01T01:00:00Z",
                "createdBy": "t",
                "comment": "",
            }
        ).encode(),
    )
    assert status == 400 and "at least one matcher" in body
    status, body = call(
        "POST",
        silences,
        json.dumps(
            {
                "matchers": [{"name": "alertname", "value": "x", "isRegex": False}],
                "startsAt": "2030-01-01T01:00:00Z",
                "endsAt": "2030-01-01T00:00:00Z",
                "createdBy": "t",
                "comment": "",
            }
        ).encode(),
    )
    assert status == 400 and "start time must be before end time" in body
    status, body = call("POST", silences, b"[" + b" " * 5000 + b"]")
    assert status == 413
    # a body is read by its Content-Encoding: gzip decoded, one it cannot decode named
    no_matchers = json.dumps(
        {"matchers": [], "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2030-01-01T01:00:00Z"}
    ).encode()
    gzipped = {"Content-Encoding": "gzip"}
    status, body = call("POST", silences, gzip.compress(no_matchers), headers=gzipped)
    assert status == 400 and "at least one matcher" in body
    status, body = call("POST", silences, no_matchers, headers={"Content-Encoding": "br"})
    assert status == 415 and "'br' is not supported" in body
    assert call("GET", demo.url + "/api/v2/silence/0123456789ab")[0] == 404
    assert call("DELETE", demo.url + "/api/v2/silence/0123456789ab")[0] == 404
    # nothing reaches the detectors through this API
    assert call("POST", demo.url + "/api/v2/alerts", b"[]")[0] == 405
    assert call("GET", demo.url + "/api/v2/silences")[0] == 200  # still serving


# -- the rest of the API ----------------------------------------------------------------------


def test_status_groups_receivers_and_reload(demo: Demo) -> None:
    status, body = call("GET", demo.url + "/api/v2/status")
    assert status == 200
    assert set(body) == {"cluster", "versionInfo", "config", "uptime"}
    assert body["cluster"]["status"] in ("ready", "disabled")
    assert "max_body_bytes: 4096" in body["config"]["original"]  # the file, secrets masked
    assert TOKEN not in json.dumps(body)
    status, groups = call("GET", demo.url + "/api/v2/alerts/groups?filter=alertname%3Dbrute_force")
    assert status == 200 and groups
    for g in groups:
        assert set(g) == {"labels", "receiver", "alerts"} and g["receiver"]["name"]
        assert g["labels"] == {"alertname": "brute_force"}  # notify.group_by: [kind]
        assert all(a["labels"]["alertname"] == "brute_force" for a in g["alerts"])
    status, receivers = call("GET", demo.url + "/api/v2/receivers")
    assert status == 200 and {"name": "streamprocconsole://"} in receivers
    status, text = call("POST", demo.url + "/-/reload")
    assert status == 200 and text.strip() == "OK"
    assert call("POST", demo.url + "/-/reload", token=None)[0] == 401


def test_streamproc_alert_query_talks_to_the_api(demo: Demo) -> None:
    def cli(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "STREAMPROC_API_TOKEN"}
        if token:
            env["STREAMPROC_API_TOKEN"] = token
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "streamproc.commands.cli",
                "alert",
                "query",
                "--url",
                demo.url,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    simple = cli("alertname=brute_force")
    assert simple.returncode == 0, simple.stderr
    assert simple.stdout.split()[:2] == ["Alertname", "Starts"] and "brute_force" in simple.stdout
    alerts = json.loads(cli("-o", "json", 'severity=~"high|critical"').stdout)
    assert alerts and {a["labels"]["severity"] for a in alerts} <= {"high", "critical"}
    refused = cli(token=None)
    assert refused.returncode == 1 and "401" in refused.stderr and "--token" in refused.stderr
    bad = cli("{alertname=")
    assert bad.returncode == 1 and "bad matcher format" in bad.stderr


def test_every_worker_of_a_deployment_lists_every_alert_and_shares_silences(tmp_path: Path) -> None:
    port = free_port()
    urls = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]  # worker i: port + i
    log = (tmp_path / "workers.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.commands.cli",
            "run",
            "--demo",
            "--workers",
            "2",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:

        def fingerprints(url: str) -> set[str]:
            try:
                status, alerts = call("GET", url + "/api/v2/alerts", token=None)
            except OSError:
                return set()
            return {a["fingerprint"] for a in alerts} if status == 200 else set()

        seen: list[set[str]] = [set(), set()]

        def both_list_them_all() -> bool:
            assert proc.poll() is None, (tmp_path / "workers.log").read_text()[-3000:]
            seen[:] = [fingerprints(u) for u in urls]
            return len(seen[0]) > 100 and seen[0] == seen[1]

        # each worker delivered part of the alerts (one alert-log group); both list them all
        wait_until_sync(
            both_list_them_all,
            120,
            "both workers to list the same alerts, more than 100",
            interval=1.0,
            detail=lambda: (
                [len(s) for s in seen],
                [
                    line
                    for line in (tmp_path / "workers.log").read_text().splitlines()
                    if " WARNING " in line or " ERROR " in line
                ][-20:],
            ),
        )

        body = json.dumps(
            {
                "matchers": [{"name": "alertname", "value": "brute_force", "isRegex": False}],
                "startsAt": "2020-01-01T00:00:00Z",
                "endsAt": "2099-01-01T00:00:00Z",
                "createdBy": "worker-0 user",
                "comment": "",
            }
        ).encode()
        status, added = call("POST", urls[0] + "/api/v2/silences", body, token=None)
        assert status == 200
        status, listed = call("GET", urls[1] + "/api/v2/silences", token=None)
        assert [s["id"] for s in listed] == [added["silenceID"]]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
