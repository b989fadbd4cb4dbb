"""check-config says how each Kafka binding's keyed detectors get their keys co-located."""

from __future__ import annotations

import io
from pathlib import Path

from streamproc.commands.check_config import check, render


def test_check_config_shows_which_detectors_are_re_keyed(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "topics:\n"
        "  - {topic: logins, family: auth-logs}\n"
        "  - {topic: web, family: api-access-logs, keyed_by: ip_address}\n"
    )
    out = io.StringIO()
    render(check(str(path)), out)
    text = out.getvalue()
    assert "records not keyed: re-keyed:" in text
    # password_spray says which records it can use (failures); compromise_suspected cannot
    assert (
        "password_spray via streamproc.repartition.logins.ip_address "
        "(the records they can use, and progress marks)" in text
    )
    assert "via streamproc.repartition.logins.username (every record)" in text
    assert "keyed_by ip_address: every detector runs where the records arrive" in text
