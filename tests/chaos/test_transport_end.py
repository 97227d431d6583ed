"""A transport fault ended before its ``until`` (the control API's ``DELETE /api/chaos/{id}``):
only the injection named, only while it is in force (pure: no event loop)."""

from __future__ import annotations

from simulator.chaos import Family
from simulator.chaos.injection import Injection
from simulator.chaos.transport import TransportFaults


def fault(name: str, injection: str, until: float | None,
          **params: str | int | float) -> Injection:
    return Injection(id=injection, fault=name, family=Family.TRANSPORT, at=0.0, until=until,
                     params=params)


def test_ending_a_shaping_fault_takes_it_out_of_force_now() -> None:
    faults = TransportFaults(1, "CP-1")
    faults.apply(fault("latency", "api1.0", 100.0, ms=200), 0.0)
    faults.apply(fault("bandwidth", "api2.0", None, bytes_per_second=500, direction="send"), 0.0)
    faults.apply(fault("fragment", "api3.0", 50.0, size=8), 0.0)
    assert faults.end("api1.0", 10.0)
    assert faults.send_latency is None and faults.receive_latency is None
    assert faults.send_rate is not None and faults.fragment is not None and faults.active
    assert faults.end("api2.0", 11.0)  # one without an end: until now
    assert faults.send_rate is None
    assert faults.end("api3.0", 12.0)
    assert faults.fragment is None and not faults.active


def test_ending_touches_no_other_injection_nor_a_replaced_one() -> None:
    faults = TransportFaults(1, "CP-1")
    faults.apply(fault("latency", "api1.0", 100.0, ms=200), 0.0)
    faults.apply(fault("latency", "chaos", 100.0, ms=50, direction="send"), 1.0)  # replaces
    assert not faults.end("nobody", 2.0)
    assert faults.send_latency is not None and faults.receive_latency is not None
    assert faults.end("api1.0", 2.0)  # only the receive side is still its own
    assert faults.receive_latency is None and faults.send_latency is not None
    assert faults.send_latency.seconds == 0.05
    assert not faults.end("api1.0", 3.0)  # ended already
    faults.apply(fault("half_open", "api4.0", 100.0), 4.0)
    assert not faults.end("api4.0", 5.0) and faults.half_open_until == 100.0  # not early
