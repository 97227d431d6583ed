"""Boot answers and clock times from a hostile central system: nothing it may send crashes the
charger (issue 14's fuzz suite found these; tests/fuzz drives many more)."""

from __future__ import annotations

import pytest

from simulator.events import Note
from simulator.machines.charger import BootState
from simulator.machines.registration import MAX_BOOT_INTERVAL
from tests.machines.pair import EPOCH, FakeCentralSystem, MachinePair, iso, parse_time

HUGE = (10**6, 2**31, 2**63, 2**64, 10**500)
"""Boot intervals the schema allows (an integer, no maximum) beyond HeartbeatInterval's range."""


def notes(pair: MachinePair, what: str) -> list[Note]:
    return [n for n in pair.events_of(Note) if n.what == what]


@pytest.mark.parametrize("interval", HUGE)
def test_an_accepted_boot_interval_above_the_range_is_capped(interval: int) -> None:
    # HeartbeatInterval took the interval through the configuration store, which raised
    # InvalidConfigurationValue for anything above a week: the charger crashed.
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Accepted", "currentTime": iso(EPOCH),
                                   "interval": interval})
    pair = MachinePair(cs=cs, config={"ClockAlignedDataInterval": 0})  # a quiet link
    assert pair.machine.statistics().boot == BootState.ACCEPTED
    call = pair.cs_call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert call.result == {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": str(MAX_BOOT_INTERVAL)}]}
    pair.advance(MAX_BOOT_INTERVAL + 1)
    assert [r.t for r in cs.of("Heartbeat")] == [MAX_BOOT_INTERVAL]
    (note,) = notes(pair, "boot_interval_capped")
    assert note.data == {"interval": str(interval), "used": MAX_BOOT_INTERVAL}


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
@pytest.mark.parametrize("interval", HUGE)
def test_a_pending_or_rejected_boot_interval_above_the_range_is_capped(
    status: str, interval: int
) -> None:
    # float(interval) raised OverflowError for an integer past 1e308: the charger crashed.
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": status, "currentTime": iso(EPOCH),
                                   "interval": interval})
    pair = MachinePair(cs=cs)
    pair.advance(MAX_BOOT_INTERVAL - 1)
    assert cs.actions() == ["BootNotification"]
    pair.advance(1)
    assert [r.t for r in cs.of("BootNotification")] == [0.0, MAX_BOOT_INTERVAL]
    assert pair.machine.statistics().boot == BootState.ACCEPTED


@pytest.mark.parametrize("action", ["BootNotification", "Heartbeat"])
@pytest.mark.parametrize("current_time", [
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "9000-01-01T00:00:00Z",
])
def test_a_current_time_near_the_ends_of_the_calendar_leaves_the_clock_alone(
    action: str, current_time: str
) -> None:
    # The clock took any date-time: every timestamp after 9999-12-31 (or before year 1) raised
    # ValueError out of datetime.fromtimestamp, in the next StatusNotification or MeterValues.
    cs = FakeCentralSystem(boot_interval=10)
    if action == "BootNotification":
        cs.answer(action, {"status": "Accepted", "currentTime": current_time, "interval": 10})
    else:
        cs.answer(action, {"currentTime": current_time})
    pair = MachinePair(cs=cs, config={"MeterValueSampleInterval": 5})
    pair.advance(11)
    pair.plug()
    pair.tag("TAG-1")
    pair.advance(20)
    assert notes(pair, "clock_not_set")
    stamps = [parse_time(r.payload["meterValue"][0]["timestamp"])
              for r in cs.of("MeterValues")]
    assert stamps and all(EPOCH <= stamp <= EPOCH + 31 for stamp in stamps)
    assert cs.of("StartTransaction")[0].payload["timestamp"] == iso(EPOCH + 11)


def test_the_last_current_time_in_range_still_sets_the_clock() -> None:
    cs = FakeCentralSystem()
    cs.answer("BootNotification", {"status": "Accepted", "currentTime": "8999-12-31T00:00:00Z",
                                   "interval": 300})
    pair = MachinePair(cs=cs)
    pair.plug()
    pair.tag("TAG-1")
    assert cs.of("StartTransaction")[0].payload["timestamp"] == "8999-12-31T00:00:00Z"
    assert not notes(pair, "clock_not_set")
