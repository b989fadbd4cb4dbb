"""The MQTT state file is written only while no batch is in flight: a batch is judged, made
durable, then acked; a file holding a judged batch not yet acked would, after a crash, hold
messages the broker sends again (counted twice on restart)."""

from __future__ import annotations

from pathlib import Path

from streamproc.config import parse_config_text
from streamproc.pipeline.runtime import IngestLoop, Runtime
from streamproc.storage.checkpoints import FileCheckpointer


def _runtime(tmp_path: Path) -> tuple[Runtime, IngestLoop, FileCheckpointer]:
    runtime = Runtime(parse_config_text(""))
    loop = IngestLoop(None, "mqtt", runtime.judge, None, None)
    runtime.ingest = [loop]
    runtime.file_checkpointer = FileCheckpointer(tmp_path / "mqtt-state.snapshot", runtime.judge)
    return runtime, loop, runtime.file_checkpointer


def test_the_state_file_waits_for_the_batch_in_flight(tmp_path: Path) -> None:
    runtime, loop, state = _runtime(tmp_path)
    loop.unsettled = True  # judged, its alerts being written, not acked
    runtime._state_file_due = True  # the interval ran out meanwhile
    runtime._write_state_file_if_settled()
    assert state.checkpoints == 0 and not state.path.exists()
    loop.unsettled = False  # acked: the loop reports the batch
    runtime._after_mqtt_batch(10)
    assert state.checkpoints == 1 and state.path.exists()
    runtime._after_mqtt_batch(10)  # not due again until the next interval
    assert state.checkpoints == 1


def test_an_idle_source_gets_its_state_file_at_each_interval(tmp_path: Path) -> None:
    runtime, loop, state = _runtime(tmp_path)
    runtime._state_file_due = True
    runtime._write_state_file_if_settled()
    assert state.checkpoints == 1 and not runtime._state_file_due
