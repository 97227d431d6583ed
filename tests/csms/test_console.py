"""What ``sim csms`` prints: one line per connection, disconnection, refusal and boot, frames
only when verbose, and never more than one line per event whatever a charger sent."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from simulator.csms.console import MAX_FRAME_CHARS, CsmsConsole
from simulator.events import CsmsFrameIn, CsmsFrameOut, CsmsNote

BOOT = json.dumps([2, "b1", "BootNotification",
                   {"chargePointVendor": "Acme", "chargePointModel": "AC22"}])
BOOT_ANSWER = json.dumps([3, "b1", {"status": "Pending", "currentTime": "2026-01-01T00:00:00Z",
                                    "interval": 30}])


def test_connection_boot_and_disconnection_lines() -> None:
    console = CsmsConsole(wall_epoch=1767225600.0)  # 2026-01-01T00:00:00Z
    lines = [
        *console.observe(CsmsNote(t=1.5, charger="CP-1", what="connected", data={"session": 1})),
        *console.observe(CsmsFrameIn(t=1.6, charger="CP-1", raw=BOOT, action="BootNotification")),
        *console.observe(CsmsFrameOut(t=1.6, charger="CP-1", raw=BOOT_ANSWER,
                                      action="BootNotification")),
        *console.observe(CsmsNote(t=2.0, charger="CP-1", what="replaced", data={"old": 1})),
        *console.observe(CsmsNote(t=9.0, charger="CP-1", what="disconnected",
                                  data={"session": 1, "current": False})),
        *console.observe(CsmsNote(t=9.5, charger=None, what="rejected",
                                  data={"status": 404, "reason": "unknown path or identity"})),
        *console.observe(CsmsNote(t=9.6, charger="CP-1", what="anomaly", data={"x": 1})),
    ]
    assert lines == [
        "00:00:01.500  CP-1  connected (session 1)",
        "00:00:01.600  CP-1  boot: Acme AC22: Pending (heartbeat interval 30 s)",
        "00:00:02.000  CP-1  reconnected: session 1 is replaced",
        "00:00:09.000  CP-1  disconnected (session 1, already replaced)",
        "00:00:09.500  -  refused: HTTP 404, unknown path or identity",
    ]


def test_verbose_shows_each_frame_cut_to_one_printable_line() -> None:
    console = CsmsConsole(wall_epoch=0.0, verbose=True)
    long = "[2,\"x\",\"DataTransfer\",{\"data\":\"" + "é\n" * 400 + "\"}]"
    (line,) = console.observe(CsmsFrameIn(t=0.0, charger="CP-1", raw=long, action="DataTransfer"))
    assert line.startswith("00:00:00.000  CP-1  <- [2,")
    assert line.endswith("…") and "\n" not in line
    assert len(line.split("<- ", 1)[1]) == MAX_FRAME_CHARS + 1
    (out,) = console.observe(CsmsFrameOut(t=0.0, charger="CP-1", raw="[3,\"x\",{}]"))
    assert out.endswith("-> [3,\"x\",{}]")


@given(raw=st.text(max_size=300), charger=st.one_of(st.none(), st.text(max_size=60)),
       what=st.sampled_from(["connected", "disconnected", "rejected", "replaced",
                             "internal_error", "anomaly"]))
def test_whatever_arrives_gives_at_most_one_printable_line_per_event(
    raw: str, charger: str | None, what: str
) -> None:
    console = CsmsConsole(wall_epoch=0.0, verbose=True)
    produced = [
        *console.observe(CsmsFrameIn(t=0.0, charger=charger, raw=raw, action="BootNotification")),
        *console.observe(CsmsFrameOut(t=0.0, charger=charger, raw=raw,
                                      action="BootNotification")),
        *console.observe(CsmsNote(t=0.0, charger=charger, what=what, data={"reason": raw})),
    ]
    assert len(produced) <= 4  # two frames, a boot line at most, a note line at most
    for line in produced:
        assert line.isprintable()
