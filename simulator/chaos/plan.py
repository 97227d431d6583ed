"""The chaos schedule of a fleet, expanded: which charger gets which fault when. Pure and seeded
(no trio, no I/O, no clock: times come in as numbers).

A ``[[chaos]]`` rule fires at ``at``, then every ``every`` seconds (if set), until the run ends.
Every choice is a draw of the charger's own stream, so adding a group or a charger never changes
what the others get, and the same seed and fleet give the same decisions in any run, real or
virtual time:

- the target's ``fraction`` picks a charger when ``derive(seed, "chaos", rule, charger,
  "target")`` draws below it: the same chargers at every firing;
- at firing ``n`` a picked charger is hit when the first draw of ``derive(seed, "chaos", rule,
  charger, n)`` is below ``probability``; that path is the injection's ``seed_path``.

Each hit is an :class:`~simulator.chaos.injection.Injection` with id ``"<rule>.<firing>"`` (the
same for every charger one firing hits) and ``until = at + for`` (``for`` as written, else the
fault's default: :func:`simulator.chaos.params.lasting_of`). Fleet faults are expanded here:
``blackout`` is a ``power_loss`` of every hit charger with ``outage = for`` (``power = false``: a
``partition``), all with the same ``until``; ``wave`` gives its inner fault to the hit chargers
one by one, ordered by the second draw of their firing stream, the ``k``-th of ``n`` at ``at +
k * over / n``, with id ``"<rule>.<firing>.<k>"``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, Protocol

import msgspec

from simulator.chaos.catalog import Family, family_of
from simulator.chaos.injection import Injection, Scalar
from simulator.chaos.params import check_params, deliberate, lasting_of
from simulator.chaos.targets import Target
from simulator.seeds import derive

__all__ = ["ChaosPlan", "GroupLike", "Hit", "RuleLike", "pick", "pool"]

_FIRING: Final = 0
_HIT: Final = 1
"""Heap order at one instant: a rule's firing is expanded before the hits already due."""


class RuleLike(Protocol):
    """A ``[[chaos]]`` rule as :class:`simulator.config.Chaos` holds it (seconds from the run's
    start; ``params`` as written or checked)."""

    @property
    def fault(self) -> str: ...
    @property
    def target(self) -> Target: ...
    @property
    def at(self) -> float: ...
    @property
    def every(self) -> float | None: ...
    @property
    def probability(self) -> float: ...
    @property
    def for_(self) -> float | None: ...
    @property
    def params(self) -> Mapping[str, Scalar]: ...


class GroupLike(Protocol):
    """A group of the fleet as :class:`simulator.config.Group` holds it."""

    @property
    def name(self) -> str: ...
    @property
    def ids(self) -> tuple[str, ...]: ...
    @property
    def tags(self) -> tuple[str, ...]: ...


class Hit(msgspec.Struct, frozen=True):
    """One decision: ``charger`` gets ``injection``."""

    charger: str
    injection: Injection


def pool(target: Target, groups: Sequence[GroupLike]) -> tuple[str, ...]:
    """The chargers ``target`` names before its ``fraction``, in fleet order: its ``ids``, its
    ``group``'s, those of every group tagged ``tag``, or the whole fleet. Names the fleet does
    not have select nothing (the fleet file's check refuses them first)."""
    if target.group is not None:
        return tuple(c for group in groups if group.name == target.group for c in group.ids)
    if target.tag is not None:
        return tuple(c for group in groups if target.tag in group.tags for c in group.ids)
    every = tuple(c for group in groups for c in group.ids)
    if target.ids:
        wanted = frozenset(target.ids)
        return tuple(c for c in every if c in wanted)
    return every


def pick(fraction: float, chargers: Sequence[str], seed: int,
         *path: str | int) -> tuple[str, ...]:
    """The ``chargers`` a ``fraction`` (0..1) keeps: each one whose own draw,
    ``derive(seed, *path, charger, "target")``, is below it (all of them at 1)."""
    if fraction >= 1.0:
        return tuple(chargers)
    return tuple(c for c in chargers if derive(seed, *path, c, "target").random() < fraction)


class _Rule(msgspec.Struct, frozen=True):
    """A rule ready to fire: its index, checked parameters and picked chargers."""

    index: int
    fault: str
    family: Family
    params: Mapping[str, Scalar]
    chargers: tuple[str, ...]
    connector: int | None
    at: float
    every: float | None
    probability: float
    lasting: float | None


class ChaosPlan:
    """The decisions of a fleet's ``[[chaos]]`` rules (see the module docstring).

    ``start`` is the run's start on the clock the times are wanted in (injections carry ``at``
    and ``until`` as ``start`` + seconds); firings at or after ``start + end`` (``end``: the
    run's duration, ``None``: no end) are not made. Iterating yields every :class:`Hit` in
    time order, lazily (a rule with ``every`` and no ``end`` never ends); two iterations give
    the same hits. Raises :class:`~simulator.chaos.catalog.CatalogError` for a rule whose fault
    or parameters the catalog refuses.
    """

    def __init__(self, rules: Sequence[RuleLike], groups: Sequence[GroupLike], seed: int, *,
                 start: float = 0.0, end: float | None = None) -> None:
        self.seed = seed
        self.start = start
        self.end = end
        self._rules = tuple(
            _Rule(index=index, fault=rule.fault, family=family_of(rule.fault),
                  params=check_params(rule.fault, rule.params, rule.for_),
                  chargers=pick(rule.target.fraction, pool(rule.target, groups), seed,
                                "chaos", index),
                  connector=rule.target.connector, at=rule.at, every=rule.every,
                  probability=rule.probability, lasting=rule.for_)
            for index, rule in enumerate(rules)
        )

    def firing_time(self, rule: int, firing: int) -> float:
        """When ``rule`` fires for the ``firing``-th time (0-based), on the plan's clock."""
        spec = self._rules[rule]
        every = spec.every or 0.0
        return self.start + spec.at + firing * every

    def _fires(self, rule: int, firing: int) -> bool:
        spec = self._rules[rule]
        if not spec.chargers or spec.probability <= 0.0:
            return False  # it can hit nobody: never fire (an endless rule would spin)
        if firing > 0 and spec.every is None:
            return False
        return self.end is None or self.firing_time(rule, firing) < self.start + self.end

    def firing(self, rule: int, firing: int) -> list[Hit]:
        """The hits of ``rule``'s ``firing``-th firing, in the order they take effect."""
        spec = self._rules[rule]
        at = self.firing_time(rule, firing)
        hit: list[tuple[float, str]] = []  # (order draw, charger)
        for charger in spec.chargers:
            if spec.probability >= 1.0 and spec.fault != "wave":
                hit.append((0.0, charger))
                continue
            stream = derive(self.seed, "chaos", rule, charger, firing)
            if stream.random() < spec.probability:
                hit.append((stream.random(), charger))
        if spec.fault == "wave":
            return self._wave(spec, firing, at, sorted(hit))
        fault, params = spec.fault, spec.params
        lasting = lasting_of(fault, spec.lasting, params)
        if fault == "blackout":
            assert lasting is not None  # blackout requires for
            fault, params = ("power_loss", {"outage": lasting}) if params["power"] \
                else ("partition", {})
        connector = None if spec.fault == "blackout" else spec.connector
        return [
            Hit(charger, Injection(
                id=f"{rule}.{firing}", fault=fault, family=family_of(fault), at=at,
                until=None if lasting is None else at + lasting, connector=connector,
                params=params, deliberate=deliberate(fault),
                seed_path=("chaos", rule, charger, firing),
            ))
            for _, charger in hit
        ]

    def _wave(self, spec: _Rule, firing: int, at: float,
              ordered: list[tuple[float, str]]) -> list[Hit]:
        fault = str(spec.params["fault"])
        over = float(spec.params["over"])
        params = {k: v for k, v in spec.params.items() if k not in ("fault", "over")}
        lasting = lasting_of(fault, spec.lasting, params)
        count = len(ordered)
        hits: list[Hit] = []
        for k, (_, charger) in enumerate(ordered):
            when = at + k * over / count
            hits.append(Hit(charger, Injection(
                id=f"{spec.index}.{firing}.{k}", fault=fault, family=family_of(fault), at=when,
                until=None if lasting is None else when + lasting, connector=spec.connector,
                params=params, deliberate=deliberate(fault),
                seed_path=("chaos", spec.index, charger, firing),
            )))
        return hits

    def __iter__(self) -> Iterator[Hit]:
        order = itertools.count()
        heap: list[tuple[float, int, int, int, int, Hit | None]] = []
        for rule in range(len(self._rules)):
            if self._fires(rule, 0):
                heapq.heappush(heap, (self.firing_time(rule, 0), _FIRING, next(order),
                                      rule, 0, None))
        while heap:
            _, kind, _, rule, firing, hit = heapq.heappop(heap)
            if kind == _HIT:
                assert hit is not None
                yield hit
                continue
            for made in self.firing(rule, firing):
                heapq.heappush(heap, (made.injection.at, _HIT, next(order), rule, firing, made))
            if self._fires(rule, firing + 1):
                heapq.heappush(heap, (self.firing_time(rule, firing + 1), _FIRING, next(order),
                                      rule, firing + 1, None))
