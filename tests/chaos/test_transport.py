"""The transport faults in force for a charger (pure: no event loop): which fault each injection
puts in force, in which directions, until when, and the seeded draws of a jittered latency."""

from __future__ import annotations

import math

import pytest

from simulator.chaos import Family
from simulator.chaos.injection import Injection
from simulator.chaos.transport import Delay, Rate, Split, TransportFaults


def fault(name: str, until: float | None = None, **params: str | int | float) -> Injection:
    return Injection(id="0.0", fault=name, family=Family.TRANSPORT, at=0.0, until=until,
                     params=params)


def test_nothing_in_force_is_inactive() -> None:
    faults = TransportFaults(1, "CP-1")
    assert not faults.active
    faults.refresh(100.0)
    assert not faults.active


def test_each_fault_goes_in_force_in_its_directions_until_its_end() -> None:
    faults = TransportFaults(1, "CP-1")
    faults.apply(fault("latency", 10.0, ms=200, jitter_ms=0, direction="send"), 0.0)
    assert faults.send_latency == Delay(0.2, 0.0, 10.0) and faults.receive_latency is None
    faults.apply(fault("bandwidth", 20.0, bytes_per_second=500, direction="both"), 1.0)
    assert faults.send_rate == faults.receive_rate == Rate(500, 20.0)
    faults.apply(fault("fragment", None, size=8), 2.0)
    assert faults.fragment == Split(8, math.inf)
    faults.apply(fault("half_open", 5.0), 3.0)
    assert faults.half_open_until == 5.0 and faults.active
    faults.refresh(5.0)
    assert faults.half_open_until is None and faults.send_latency is not None
    faults.refresh(10.0)
    assert faults.send_latency is None and faults.send_rate is not None
    faults.refresh(20.0)
    assert faults.send_rate is None and faults.active  # the fragmenting lasts the run
    assert faults.fragment is not None


def test_a_fault_replaces_one_of_its_kind() -> None:
    faults = TransportFaults(1, "CP-1")
    faults.apply(fault("latency", 100.0, ms=500), 0.0)
    faults.apply(fault("latency", 10.0, ms=50), 1.0)
    assert faults.send_latency == faults.receive_latency == Delay(0.05, 0.0, 10.0)
    faults.refresh(10.0)
    assert not faults.active


def test_what_the_stream_cannot_apply_changes_nothing() -> None:
    faults = TransportFaults(1, "CP-1")
    with pytest.raises(ValueError, match="does not apply the reset fault"):
        faults.apply(fault("reset"), 0.0)
    with pytest.raises(ValueError, match="direction 'up'"):
        faults.apply(fault("latency", 10.0, ms=100, direction="up"), 0.0)
    assert not faults.active and faults.send_latency is None


def test_jittered_delays_are_the_seeds_and_never_negative() -> None:
    jitter = Delay(0.1, 0.3, math.inf)
    draws = [TransportFaults(7, "CP-1").delay(jitter) for _ in range(2)]
    one, two = TransportFaults(7, "CP-1"), TransportFaults(7, "CP-1")
    first = [one.delay(jitter) for _ in range(50)]
    assert first == [two.delay(jitter) for _ in range(50)]  # same seed, same charger: same
    assert first != [TransportFaults(7, "CP-2").delay(jitter) for _ in range(50)]
    assert min(first) == 0.0 and max(first) <= 0.4  # 0.1 ± 0.3: a third clamp at 0
    assert len(set(first)) > 25
    assert draws[0] == draws[1]
    assert TransportFaults(7, "CP-1").delay(Delay(0.25, 0.0, 1.0)) == 0.25
