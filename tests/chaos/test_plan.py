"""The chaos plan: a fleet's ``[[chaos]]`` rules expanded into per-charger injections, seeded.

Same seed and fleet, same decisions; another seed, other decisions; a group added leaves the
decisions of the chargers already there alone; probability and fraction hit about their share;
fleet faults (blackout, wave) expand into the faults they are made of."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import msgspec
import pytest

from simulator.chaos import ChaosPlan, Family, Hit, Target
from simulator.chaos.injection import Scalar
from simulator.chaos.plan import pick, pool


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    fault: str
    target: Target = Target()
    at: float = 0.0
    every: float | None = None
    probability: float = 1.0
    for_: float | None = None
    params: Mapping[str, Scalar] = {}


class Group(msgspec.Struct, frozen=True):
    name: str
    ids: tuple[str, ...]
    tags: tuple[str, ...] = ()


def group(name: str, count: int, *tags: str) -> Group:
    return Group(name, tuple(f"{name}-{n}" for n in range(count)), tags)


STREET, DEPOT = group("street", 20, "urban"), group("depot", 10)


def decisions(hits: list[Hit]) -> list[tuple[str, str, str, float]]:
    return [(h.charger, h.injection.id, h.injection.fault, h.injection.at) for h in hits]


def first(plan: ChaosPlan, count: int) -> list[Hit]:
    return list(itertools.islice(plan, count))


RULES = [
    Rule(fault="partition", at=10, every=60, probability=0.3, for_=20),
    Rule(fault="latency", target=Target(group="street", fraction=0.5), at=5, every=45,
         probability=0.5, params={"ms": 300}),
]


def test_same_seed_same_decisions_other_seed_others() -> None:
    one = decisions(first(ChaosPlan(RULES, [STREET, DEPOT], seed=1), 200))
    assert one == decisions(first(ChaosPlan(RULES, [STREET, DEPOT], seed=1), 200))
    assert one != decisions(first(ChaosPlan(RULES, [STREET, DEPOT], seed=2), 200))
    assert [at for *_, at in one] == sorted(at for *_, at in one)  # in time order


def test_a_group_added_leaves_the_others_decisions_alone() -> None:
    end = 3600.0
    before = list(ChaosPlan(RULES, [STREET], seed=9, end=end))
    after = list(ChaosPlan(RULES, [STREET, group("extra", 15)], seed=9, end=end))
    assert decisions(before) == decisions([h for h in after if not h.charger.startswith("ex")])
    assert any(h.charger.startswith("extra") for h in after)


def test_injections_carry_what_the_charger_and_the_ledger_need() -> None:
    rules = [Rule(fault="latency", target=Target(ids=("street-3",), connector=1), at=5,
                  every=10, for_=2, params={"ms": 300}),
             Rule(fault="clock_skew", target=Target(tag="urban", fraction=0.2), at=7)]
    plan = ChaosPlan(rules, [STREET, DEPOT], seed=3, start=100.0, end=30)
    hits = list(plan)
    latency = [h for h in hits if h.injection.fault == "latency"]
    assert [(h.injection.id, h.injection.at, h.injection.until) for h in latency] == [
        ("0.0", 105.0, 107.0), ("0.1", 115.0, 117.0), ("0.2", 125.0, 127.0)]
    assert latency[0].injection.params == {"ms": 300.0, "jitter_ms": 0.0, "direction": "both"}
    assert latency[0].injection.family is Family.TRANSPORT
    assert latency[0].injection.connector == 1
    assert latency[0].injection.seed_path == ("chaos", 0, "street-3", 0)
    assert not latency[0].injection.deliberate
    skews = [h for h in hits if h.injection.fault == "clock_skew"]
    assert skews and all(h.charger.startswith("street") for h in skews)
    assert all(h.injection.deliberate and h.injection.until is None for h in skews)
    assert {h.charger for h in skews} == set(pick(0.2, STREET.ids, 3, "chaos", 1))


def test_pool_by_ids_group_tag_or_fleet() -> None:
    groups = [STREET, DEPOT]
    assert pool(Target(), groups) == STREET.ids + DEPOT.ids
    assert pool(Target(group="depot"), groups) == DEPOT.ids
    assert pool(Target(tag="urban"), groups) == STREET.ids
    assert pool(Target(ids=("depot-1", "street-0")), groups) == ("street-0", "depot-1")


def test_probability_and_fraction_hit_about_their_share() -> None:
    big = group("big", 2000)
    rule = Rule(fault="reset", every=1.0, probability=0.25)
    hits = list(ChaosPlan([rule], [big], seed=4, end=4.0))
    assert [len([h for h in hits if h.injection.id == f"0.{n}"]) for n in range(4)] == \
        pytest.approx([500] * 4, abs=80)
    picked = pick(0.1, big.ids, 4, "chaos", 0)
    assert len(picked) == pytest.approx(200, abs=40)
    ruled = list(ChaosPlan([Rule(fault="reset", target=Target(fraction=0.1), every=1.0)], [big],
                           seed=4, end=3.0))
    per_firing = [{h.charger for h in ruled if h.injection.id == f"0.{n}"} for n in range(3)]
    assert per_firing == [set(picked)] * 3  # the same chargers at every firing


def test_a_rule_that_can_hit_nobody_never_fires() -> None:
    never = [Rule(fault="reset", every=1.0, probability=0.0),
             Rule(fault="reset", target=Target(fraction=0.0), every=1.0)]
    assert first(ChaosPlan(never, [STREET], seed=1), 1) == []


def test_blackout_takes_every_target_down_and_back_together() -> None:
    dark = Rule(fault="blackout", target=Target(group="depot"), at=60, for_=300)
    hits = list(ChaosPlan([dark], [STREET, DEPOT], seed=1))
    assert [h.charger for h in hits] == list(DEPOT.ids)
    assert {(h.injection.fault, h.injection.id, h.injection.at, h.injection.until,
             h.injection.family) for h in hits} == {
        ("power_loss", "0.0", 60.0, 360.0, Family.BEHAVIOUR)}
    assert hits[0].injection.params == {"outage": 300.0}
    cut = Rule(fault="blackout", at=60, for_=300, params={"power": False})
    assert {(h.injection.fault, h.injection.until) for h in ChaosPlan([cut], [DEPOT], seed=1)} \
        == {("partition", 360.0)}


def test_a_wave_rolls_its_fault_over_the_targets_in_a_seeded_order() -> None:
    wave = Rule(fault="wave", at=100, for_=30,
                params={"fault": "partition", "over": 100})
    hits = list(ChaosPlan([wave], [DEPOT], seed=6))
    assert sorted(h.charger for h in hits) == sorted(DEPOT.ids)
    assert [h.injection.at for h in hits] == [100.0 + 10 * k for k in range(10)]
    assert [h.injection.id for h in hits] == [f"0.0.{k}" for k in range(10)]
    assert all(h.injection.until == h.injection.at + 30 for h in hits)
    assert all(h.injection.fault == "partition" and h.injection.params == {} for h in hits)
    order = [h.charger for h in hits]
    assert order != list(DEPOT.ids)  # seeded, not the fleet order
    assert order == [h.charger for h in ChaosPlan([wave], [DEPOT], seed=6)]
    assert order != [h.charger for h in ChaosPlan([wave], [DEPOT], seed=7)]
    skew = Rule(fault="wave", params={"fault": "clock_skew", "mode": "1970", "over": 10})
    (first_hit, *_) = ChaosPlan([skew], [DEPOT], seed=6)
    assert first_hit.injection.params == {"mode": "1970", "seconds": 3600.0}
    assert first_hit.injection.deliberate
