"""The transport faults in force for one charger: which, until when, and the seeded draws of their
jittered delays. Pure state and decisions (no trio, no I/O): the chaos stream under the charger's
WebSocket client (``simulator.actors.chaos_stream``) reads it on every send and receive and
applies it to the bytes.

``latency`` (± ``jitter_ms``, uniform, drawn from the charger's seeded ``chaos``/``transport``
stream), ``bandwidth`` and ``fragment`` each act in the directions their ``direction`` names;
``half_open`` holds every call until its end. A fault replaces one of the same kind still in
force. Ends are monotonic seconds (``math.inf``: until the run ends).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TypeVar

from simulator import seeds
from simulator.chaos.injection import Injection

__all__ = ["Delay", "Rate", "Split", "TransportFaults"]


@dataclasses.dataclass(frozen=True, slots=True)
class Delay:
    """A latency: ``seconds`` ± ``jitter`` (uniform), until ``until`` (``injection``: whose,
    not compared)."""

    seconds: float
    jitter: float
    until: float
    injection: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """A bandwidth limit of ``bytes_per_second``, until ``until`` (``injection``: whose,
    not compared)."""

    bytes_per_second: int
    until: float
    injection: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Split:
    """Writes cut into pieces of ``size`` bytes, until ``until`` (``injection``: whose,
    not compared)."""

    size: int
    until: float
    injection: str = dataclasses.field(default="", compare=False)


class TransportFaults:
    """The transport faults in force for one charger (see the module docstring). ``active`` is
    False when nothing is in force: the streams then pass every call straight through."""

    __slots__ = ("_rng", "active", "fragment", "half_open_until", "identity", "receive_latency",
                 "receive_rate", "seed", "send_latency", "send_rate")

    def __init__(self, seed: int, identity: str) -> None:
        self.seed = seed
        self.identity = identity
        self.active = False
        self.send_latency: Delay | None = None
        self.receive_latency: Delay | None = None
        self.send_rate: Rate | None = None
        self.receive_rate: Rate | None = None
        self.fragment: Split | None = None
        self.half_open_until: float | None = None
        self._rng: seeds.Stream | None = None  # made on first use

    def apply(self, injection: Injection, now: float) -> None:
        """Put ``latency``, ``bandwidth``, ``fragment`` or ``half_open`` in force from ``now``
        until ``injection.until`` (None: until the run ends). Raises ``ValueError`` for any
        other fault or a parameter it cannot use (nothing is changed then)."""
        params = injection.params
        until = math.inf if injection.until is None else injection.until
        directions = _directions(str(params.get("direction", "both")))
        match injection.fault:
            case "latency":
                delay = Delay(float(params.get("ms", 200.0)) / 1000,
                              float(params.get("jitter_ms", 0.0)) / 1000, until, injection.id)
                if "send" in directions:
                    self.send_latency = delay
                if "receive" in directions:
                    self.receive_latency = delay
            case "bandwidth":
                rate = Rate(max(1, int(params.get("bytes_per_second", 2000))), until,
                            injection.id)
                if "send" in directions:
                    self.send_rate = rate
                if "receive" in directions:
                    self.receive_rate = rate
            case "fragment":
                self.fragment = Split(max(1, int(params.get("size", 8))), until, injection.id)
            case "half_open":
                self.half_open_until = until
            case _:
                raise ValueError(f"the chaos stream does not apply the {injection.fault} fault")
        self.active = True
        self.refresh(now)

    def end(self, injection: str, now: float) -> bool:
        """End the ``latency``, ``bandwidth`` or ``fragment`` of ``injection`` now, before its
        ``until`` (the control API's ``DELETE``); returns whether one was in force (one
        replaced by a later fault of its kind is not). ``half_open`` is not ended early: its
        end resets the connections, which the link does at its ``until``."""
        before = (self.send_latency, self.receive_latency, self.send_rate, self.receive_rate,
                  self.fragment)
        self.send_latency = _cut(self.send_latency, injection, now)
        self.receive_latency = _cut(self.receive_latency, injection, now)
        self.send_rate = _cut(self.send_rate, injection, now)
        self.receive_rate = _cut(self.receive_rate, injection, now)
        self.fragment = _cut(self.fragment, injection, now)
        found = before != (self.send_latency, self.receive_latency, self.send_rate,
                           self.receive_rate, self.fragment)
        self.refresh(now)
        return found

    def refresh(self, now: float) -> None:
        """Forget the faults that have ended by ``now``; ``active`` says whether anything is
        left to consult."""
        if self.send_latency is not None and self.send_latency.until <= now:
            self.send_latency = None
        if self.receive_latency is not None and self.receive_latency.until <= now:
            self.receive_latency = None
        if self.send_rate is not None and self.send_rate.until <= now:
            self.send_rate = None
        if self.receive_rate is not None and self.receive_rate.until <= now:
            self.receive_rate = None
        if self.fragment is not None and self.fragment.until <= now:
            self.fragment = None
        if self.half_open_until is not None and self.half_open_until <= now:
            self.half_open_until = None
        self.active = (
            self.send_latency is not None or self.receive_latency is not None
            or self.send_rate is not None or self.receive_rate is not None
            or self.fragment is not None or self.half_open_until is not None
        )

    def delay(self, latency: Delay) -> float:
        """One delay of ``latency``, in seconds (never negative)."""
        if latency.jitter <= 0:
            return latency.seconds
        if self._rng is None:
            self._rng = seeds.derive(self.seed, self.identity, "chaos", "transport")
        return max(0.0, latency.seconds + self._rng.uniform(-latency.jitter, latency.jitter))


_Shaping = TypeVar("_Shaping", Delay, Rate, Split)


def _cut(held: _Shaping | None, injection: str, now: float) -> _Shaping | None:
    """``held`` ending at ``now`` if it is ``injection``'s and still in force, else as it is."""
    if held is not None and held.injection == injection and held.until > now:
        return dataclasses.replace(held, until=now)
    return held


def _directions(direction: str) -> tuple[str, ...]:
    """The directions a ``direction`` parameter names; raises ``ValueError`` for another."""
    if direction not in ("both", "send", "receive"):
        raise ValueError(f'direction {direction!r}: use "both", "send" or "receive"')
    return ("send", "receive") if direction == "both" else (direction,)
