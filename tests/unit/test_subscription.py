"""The Kafka subscription a config's bindings make: what a topic pattern may match."""

from __future__ import annotations

import re

from streamproc.config import parse_config
from streamproc.pipeline.runtime import compile_subscription


def _pattern(dlq_suffix: str) -> re.Pattern[str]:
    config = parse_config({"topics": [{"pattern": "^logs-.*$", "family": "auth-logs"}]}, file=None)
    names, pattern = compile_subscription(config.bindings, [], "myapp", dlq_suffix)
    assert names == [] and pattern is not None
    return re.compile(pattern)


def test_a_pattern_takes_user_topics_but_no_internal_or_dead_letter_topic() -> None:
    pattern = _pattern(".dlq")
    assert pattern.match("logs-auth")
    for internal in ("myapp.repartition.x", "streamproc.old", "logs-auth.dlq"):
        assert not pattern.match(internal), internal


def test_the_configured_dead_letter_suffix_is_the_one_left_out() -> None:
    pattern = _pattern("-deadletters")
    assert not pattern.match("logs-auth-deadletters")
    assert pattern.match("logs-auth.dlq")  # an ordinary topic name under this config
