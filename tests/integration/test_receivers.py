"""The HTTP receivers the notify tests and the notify bench post to (streamproc.bench.receivers):
what they record, how they refuse, and that the bench's receivers run in a child process."""

from __future__ import annotations

import http.client
import os
import time

import orjson
import pytest
from streamproc.bench.receivers import Receiver, Receivers


def post(
    port: int, body: bytes, path: str = "/notify", conn: http.client.HTTPConnection | None = None
) -> http.client.HTTPResponse:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp


def test_receiver_records_path_headers_body_and_json_of_each_request(receiver: Receiver) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    assert post(receiver.port, b'{"title": "a"}', "/hook", conn).status == 200
    assert post(receiver.port, b"title=b", "/form", conn).status == 200  # same connection
    first, second = receiver.wait_for(2)
    assert first["path"] == "/hook" and first["json"] == {"title": "a"}
    assert first["headers"]["Content-Type"] == "application/json"
    assert second["body"] == b"title=b" and second["json"] is None
    assert first["arrived"] <= first["at"] <= second["arrived"]


def test_fail_next_refuses_then_accepts_and_retry_after_comes_only_with_the_refusal(
    receiver: Receiver,
) -> None:
    receiver.fail_next, receiver.fail_status = 1, 429
    receiver.headers = {"Retry-After": "1", "X-Seen": "yes"}
    refused = post(receiver.port, b"{}")
    accepted = post(receiver.port, b"{}")
    assert refused.status == 429 and refused.getheader("Retry-After") == "1"
    assert accepted.status == 200 and accepted.getheader("Retry-After") is None
    assert accepted.getheader("X-Seen") == "yes"
    assert [r["status"] for r in receiver.requests] == [429, 200]
    assert len(receiver.accepted) == 1


def test_a_delayed_request_is_recorded_when_answered(receiver: Receiver) -> None:
    receiver.delay = 0.3
    started = time.time()
    post(receiver.port, b"{}")
    [req] = receiver.requests
    assert req["at"] - req["arrived"] >= 0.3 and req["arrived"] - started < 0.3


def test_a_stopped_receiver_refuses_connections_until_it_listens_again(receiver: Receiver) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    post(receiver.port, b"{}", conn=conn)
    port = receiver.port
    receiver.stop_listening()
    with pytest.raises(OSError):
        post(port, b"{}", conn=conn)  # the open connection was dropped too
    with pytest.raises(ConnectionRefusedError):
        post(port, b"{}")
    receiver.listen()
    assert receiver.port == port
    assert post(port, b"{}").status == 200
    assert len(receiver.requests) == 2


def test_bench_receivers_run_in_a_child_process_and_count_answers() -> None:
    rx = Receivers(3, 0.01, hanging=1)
    try:
        assert rx.proc.pid != os.getpid() and rx.proc.is_alive()
        ports = [int(u.rsplit(":", 1)[1].split("/")[0]) for u in rx.urls()]
        for i, port in enumerate(ports[:2]):
            post(port, orjson.dumps({"n": i}))
        assert rx.count() == 2
        conn = http.client.HTTPConnection("127.0.0.1", ports[2], timeout=0.5)
        with pytest.raises(TimeoutError):
            post(ports[2], b"{}", conn=conn)  # the hanging receiver holds the request
        arrivals = rx.arrivals()
        assert [[doc for _, doc in a] for a in arrivals] == [[{"n": 0}], [{"n": 1}], []]
        assert rx.count() == 2
        rx.reset()
        assert rx.count() == 0 and rx.arrivals() == [[], [], []]
    finally:
        rx.close()
    assert not rx.proc.is_alive()
