"""The central system's calls by feature profile (``sim report``, and ``--charger``): each
CS→CP action it used, paired by unique id with the charger's answer, counted by status and
CALLERROR code, in the text report, the JSON and through the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Final

import trio

from simulator.events import Event, FrameIn, FrameOut, FrameUnsent
from simulator.report import (
    NO_STATUS,
    UNKNOWN_PROFILE,
    ProfileAction,
    ProfileUsage,
    profile_lines,
    render_charger_text,
    render_json,
    render_text,
    summarize,
    summarize_charger,
)
from tests.report.helpers import T0, write_run

ROOT: Final = Path(__file__).resolve().parents[2]
PROFILES: Final = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
                   "SmartCharging", "RemoteTrigger", "Security")


def cs_call(t: float, charger: str, uid: str, action: str, payload: str = "{}") -> FrameIn:
    return FrameIn(t=T0 + t, charger=charger, raw=f'[2,"{uid}","{action}",{payload}]',
                   message_type=2, unique_id=uid, action=action)


def result(t: float, charger: str, uid: str, action: str, payload: str) -> FrameOut:
    return FrameOut(t=T0 + t, charger=charger, raw=f'[3,"{uid}",{payload}]', message_type=3,
                    unique_id=uid, action=action)


def error(t: float, charger: str, uid: str, code: str, action: str | None = None) -> FrameOut:
    return FrameOut(t=T0 + t, charger=charger, raw=json.dumps([4, uid, code, "why", {}]),
                    message_type=4, unique_id=uid, action=action)


def events() -> list[Event]:
    """Calls of four profiles and two unknown ones, answered every way there is; the charger's
    own CALLs and the results it received, which are not the central system's calls."""
    return [
        # Core: two Resets answered Accepted (one of the answers never written), one Rejected
        cs_call(1, "A", "r1", "Reset", '{"type":"Soft"}'),
        result(1, "A", "r1", "Reset", '{"status":"Accepted"}'),
        FrameUnsent(t=T0 + 1, charger="A", unique_id="r1", action="Reset"),
        cs_call(2, "B", "r1", "Reset", '{"type":"Hard"}'),  # the same id, another charger
        result(2, "B", "r1", "Reset", '{"status":"Rejected"}'),
        cs_call(3, "B", "r2", "Reset", '{"type":"Soft"}'),
        result(3, "B", "r2", "Reset", '{"status":"Accepted"}'),
        # a result without a status; a DataTransfer (sent either way, a Core action)
        cs_call(4, "A", "g1", "GetConfiguration"),
        result(4, "A", "g1", "GetConfiguration", '{"configurationKey":[]}'),
        cs_call(5, "A", "d1", "DataTransfer", '{"vendorId":"x"}'),
        result(5, "A", "d1", "DataTransfer", '{"status":"UnknownVendorId"}'),
        # Reservation: NotSupported, and a call left unanswered (the charger went down)
        cs_call(6, "A", "v1", "ReserveNow"),
        error(6, "A", "v1", "NotSupported", "ReserveNow"),
        cs_call(7, "B", "v2", "ReserveNow"),
        # SmartCharging: a CALLERROR whose action the charger did not record
        cs_call(8, "B", "s1", "SetChargingProfile"),
        error(8, "B", "s1", "FormationViolation"),
        # Security: an unreadable CALLERROR
        cs_call(9, "A", "e1", "ExtendedTriggerMessage"),
        FrameOut(t=T0 + 9, charger="A", raw="[4, broken", message_type=4, unique_id="e1"),
        # not CS→CP actions: unknown, or one only a charge point sends
        cs_call(10, "A", "u1", "Teleport"),
        error(10, "A", "u1", "NotImplemented", "Teleport"),
        cs_call(11, "B", "u2", "BootNotification"),
        error(11, "B", "u2", "NotSupported", "BootNotification"),
        # the charger's own CALL and the central system's answer: not counted
        FrameOut(t=T0 + 12, charger="A", raw='[2,"h1","Heartbeat",{}]', message_type=2,
                 unique_id="h1", action="Heartbeat"),
        FrameIn(t=T0 + 12.1, charger="A", raw='[3,"h1",{"currentTime":"x"}]', message_type=3,
                unique_id="h1", action="Heartbeat", latency=0.1),
    ]


EXPECTED: Final = (
    ProfileUsage(profile="Core", calls=5, actions=(
        ProfileAction(action="DataTransfer", calls=1, statuses={"UnknownVendorId": 1},
                      call_errors={}),
        ProfileAction(action="GetConfiguration", calls=1, statuses={NO_STATUS: 1},
                      call_errors={}),
        ProfileAction(action="Reset", calls=3, statuses={"Accepted": 2, "Rejected": 1},
                      call_errors={}, unsent=1),
    )),
    ProfileUsage(profile="FirmwareManagement", calls=0, actions=()),
    ProfileUsage(profile="LocalAuthListManagement", calls=0, actions=()),
    ProfileUsage(profile="Reservation", calls=2, actions=(
        ProfileAction(action="ReserveNow", calls=2, statuses={},
                      call_errors={"NotSupported": 1}, unanswered=1),
    )),
    ProfileUsage(profile="SmartCharging", calls=1, actions=(
        ProfileAction(action="SetChargingProfile", calls=1, statuses={},
                      call_errors={"FormationViolation": 1}),
    )),
    ProfileUsage(profile="RemoteTrigger", calls=0, actions=()),
    ProfileUsage(profile="Security", calls=1, actions=(
        ProfileAction(action="ExtendedTriggerMessage", calls=1, statuses={},
                      call_errors={"(unreadable)": 1}),
    )),
    ProfileUsage(profile=UNKNOWN_PROFILE, calls=2, actions=(
        ProfileAction(action="BootNotification", calls=1, statuses={},
                      call_errors={"NotSupported": 1}),
        ProfileAction(action="Teleport", calls=1, statuses={},
                      call_errors={"NotImplemented": 1}),
    )),
)


async def test_calls_are_paired_with_their_answers_and_counted_by_profile(
    tmp_path: Path,
) -> None:
    path = tmp_path / "profiles.db"
    await write_run(path, events())
    report = summarize(path)
    assert report.profiles == EXPECTED
    assert tuple(p.profile for p in report.profiles[:7]) == PROFILES


async def test_the_text_report_lists_used_profiles_and_names_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "profiles.db"
    await write_run(path, events())
    text = render_text(summarize(path))
    section = text[text.index("central system's calls by feature profile"):].splitlines()
    assert section[1:4] == ["  Core: 5 call(s)",
                            "    DataTransfer         1  UnknownVendorId 1",
                            "    GetConfiguration     1  (no status) 1"]
    assert section[4] == "    Reset                3  Accepted 2, Rejected 1; answer unsent 1"
    assert "    ReserveNow     2  CALLERROR NotSupported 1; unanswered 1" in section
    assert "    ExtendedTriggerMessage     1  CALLERROR (unreadable) 1" in section
    assert "  (unknown): 2 call(s)" in section
    assert "  not used: FirmwareManagement, LocalAuthListManagement, RemoteTrigger" in section


async def test_a_run_without_central_system_calls_says_so(tmp_path: Path) -> None:
    path = tmp_path / "quiet.db"
    await write_run(path, [
        FrameOut(t=T0 + 1, charger="A", raw='[2,"b1","BootNotification",{}]', message_type=2,
                 unique_id="b1", action="BootNotification"),
    ])
    report = summarize(path)
    assert [(p.profile, p.calls, p.actions) for p in report.profiles] == [
        (profile, 0, ()) for profile in PROFILES]
    assert profile_lines(report.profiles) == ["central system's calls by feature profile: none"]
    assert "central system's calls by feature profile: none" in render_text(report)


async def test_the_json_report_and_the_command_line_give_the_same_section(
    tmp_path: Path,
) -> None:
    path = tmp_path / "profiles.db"
    await write_run(path, events())
    as_json = json.loads(render_json(summarize(path)))["profiles"]
    assert [p["profile"] for p in as_json] == [*PROFILES, UNKNOWN_PROFILE]
    reset = as_json[0]["actions"][2]
    assert reset == {"action": "Reset", "calls": 3, "statuses": {"Accepted": 2, "Rejected": 1},
                     "call_errors": {}, "unanswered": 0, "unsent": 1}
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-m", "simulator", "report", str(path), "--json"],
            capture_stdout=True, capture_stderr=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["profiles"] == as_json


async def test_one_chargers_report_has_its_own_calls(tmp_path: Path) -> None:
    path = tmp_path / "profiles.db"
    await write_run(path, events())
    b = summarize_charger(path, "B")
    used = {p.profile: p for p in b.profiles if p.calls}
    assert set(used) == {"Core", "Reservation", "SmartCharging", UNKNOWN_PROFILE}
    assert used["Core"].actions == (
        ProfileAction(action="Reset", calls=2, statuses={"Accepted": 1, "Rejected": 1},
                      call_errors={}),
    )
    assert used["Reservation"].actions[0].unanswered == 1
    text = render_charger_text(b)
    assert "    Reset     2  Accepted 1, Rejected 1" in text.splitlines()
    assert json.loads(render_json(b))["profiles"][0]["calls"] == 2


async def test_a_reused_unique_id_pairs_calls_and_answers_in_order(tmp_path: Path) -> None:
    path = tmp_path / "reused.db"
    await write_run(path, [
        cs_call(1, "A", "same", "ClearCache"),
        result(1, "A", "same", "ClearCache", '{"status":"Accepted"}'),
        cs_call(2, "A", "same", "UnlockConnector", '{"connectorId":1}'),
        result(2, "A", "same", "UnlockConnector", '{"status":"Unlocked"}'),
        cs_call(3, "A", "same", "UnlockConnector", '{"connectorId":1}'),
    ])
    core = summarize(path).profiles[0]
    assert core.actions == (
        ProfileAction(action="ClearCache", calls=1, statuses={"Accepted": 1}, call_errors={}),
        ProfileAction(action="UnlockConnector", calls=2, statuses={"Unlocked": 1},
                      call_errors={}, unanswered=1),
    )


async def test_many_unknown_actions_are_cut_short_and_blank_names_show(tmp_path: Path) -> None:
    path = tmp_path / "hostile.db"
    names = [f"Vendor{n:02}" for n in range(14)] + [" ", "Reset "]
    events: list[Event] = [cs_call(n, "A", f"x{n}", name) for n, name in enumerate(names)]
    events += [cs_call(20 + n, "A", f"y{n}", "Vendor00") for n in range(3)]
    await write_run(path, events)
    lines = profile_lines(summarize(path).profiles)
    unknown = lines[lines.index("  (unknown): 19 call(s)") + 1:]
    assert unknown[0] == "    ' '     " + "     1  unanswered 1"
    assert unknown[1] == "    'Reset '" + "     1  unanswered 1"
    assert unknown[2] == "    Vendor00" + "     4  unanswered 4"
    assert unknown[12] == "    and 4 more action(s), 4 call(s)"
    assert unknown[13].startswith("  not used: Core, ")
