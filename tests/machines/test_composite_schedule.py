"""The composite schedule (simulator/machines/smart_charging.py): worked examples, and properties
checked with hypothesis against a reference written here from OCPP 1.6 §3.13 alone.

The reference (:func:`prevailing`) finds, at one instant, each purpose's profile in force by
brute force; the properties compare the composite with it at every boundary and at instants
between. Derandomized and few examples, so the suite runs the same cases in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.machines.smart_charging import (
    Composite,
    ConnectorLoad,
    Kind,
    Period,
    Purpose,
    StackedProfile,
    Supply,
    Unit,
    charge_point_schedule,
    composite_schedule,
)
from simulator.ocpp.v16 import RecurrencyKind

DAY = 86_400.0
START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC).timestamp()  # a Monday, noon
"""The composite's start (Unix seconds) in every example."""

CPMAX, TXDEFAULT, TX = (Purpose.CHARGE_POINT_MAX_PROFILE, Purpose.TX_DEFAULT_PROFILE,
                        Purpose.TX_PROFILE)


def stacked(profile_id: int, purpose: Purpose, periods: list[tuple[float, float]], *,
            level: int = 0, connector_id: int = 0, kind: Kind = Kind.ABSOLUTE,
            unit: Unit = Unit.AMPS, **extra: object) -> StackedProfile:
    return StackedProfile(profile_id=profile_id, connector_id=connector_id, stack_level=level,
                          purpose=purpose, kind=kind, unit=unit,
                          periods=tuple(Period(s, lim) for s, lim in periods),
                          **extra)  # type: ignore[arg-type]


def shape(composite: Composite) -> list[tuple[float, float | None]]:
    return [(p.start, p.limit) for p in composite.periods]


# --- worked examples ----------------------------------------------------------------------------


def test_stacking_a_peak_hours_profile_over_a_default() -> None:
    # §3.13.3: TxDefaultProfile stack 0 allows 16 A all day; stack 1 lowers it to 8 A from
    # 17:00 to 20:00 (Absolute, 3 h): the higher stack level prevails while it runs.
    all_day = stacked(1, TXDEFAULT, [(0, 16)], kind=Kind.RELATIVE)
    peak = stacked(2, TXDEFAULT, [(0, 8)], level=1, start_schedule=START + 5 * 3600,
                   duration=3 * 3600)
    got = composite_schedule([all_day, peak], connector_id=1, start=START, duration=12 * 3600,
                             unit=Unit.AMPS)
    assert shape(got) == [(0, 16), (5 * 3600, 8), (8 * 3600, 16)]


def test_a_tx_profile_overrides_the_default_and_the_maximum_caps_both() -> None:
    # §3.13.4: the TxProfile replaces the TxDefaultProfile for its transaction, whatever their
    # stack levels; the ChargePointMaxProfile caps the result.
    default = stacked(1, TXDEFAULT, [(0, 32)], level=5, kind=Kind.RELATIVE)
    tx = stacked(2, TX, [(0, 20), (1800, 10)], connector_id=1, kind=Kind.RELATIVE)
    cp_max = stacked(3, CPMAX, [(0, 16), (3600, 63)], kind=Kind.RELATIVE)
    got = composite_schedule([default, tx, cp_max], connector_id=1, start=START,
                             duration=7200, unit=Unit.AMPS, transaction_start=START - 600)
    assert shape(got) == [(0, 16), (1200, 10)]


def test_a_daily_recurring_maximum_in_watts() -> None:
    # A charge point limited to 11 kW between 18:00 and 22:00 every day (Recurring Daily from
    # 18:00 yesterday), asked in A on three phases at 230 V.
    evening = stacked(1, CPMAX, [(0, 11_000), (4 * 3600, 22_000)], kind=Kind.RECURRING,
                      recurrency=RecurrencyKind.DAILY, unit=Unit.WATTS,
                      start_schedule=START + 6 * 3600 - DAY)
    got = composite_schedule([evening], connector_id=1, start=START, duration=DAY,
                             unit=Unit.AMPS)
    assert [p.start for p in got.periods] == [0, 6 * 3600, 10 * 3600]
    assert [p.limit for p in got.periods] == pytest.approx([22_000 / 690, 11_000 / 690,
                                                            22_000 / 690])


def test_weekly_recurrence_and_validity() -> None:
    monday_morning = stacked(1, TXDEFAULT, [(0, 10)], kind=Kind.RECURRING,
                             recurrency=RecurrencyKind.WEEKLY, duration=3600,
                             start_schedule=START - 4 * 3600 - 7 * DAY,
                             valid_to=START + 7 * DAY)
    got = composite_schedule([monday_morning], connector_id=1, start=START - 5 * 3600,
                             duration=14 * DAY, unit=Unit.AMPS)
    week = 7 * DAY
    assert shape(got) == [(0, None), (3600, 10), (7200, None), (week + 3600, 10),
                          (week + 7200, None)]  # the week after: no longer valid


def test_relative_without_a_transaction_starts_now_and_duration_ends_it() -> None:
    profile = stacked(1, TXDEFAULT, [(0, 6), (600, 12)], kind=Kind.RELATIVE, duration=900)
    got = composite_schedule([profile], connector_id=1, start=START, duration=3600,
                             unit=Unit.WATTS, ceiling_w=22_000)
    assert shape(got) == [(0, 6 * 690), (600, 12 * 690), (900, 22_000)]


def test_number_phases_and_the_supply() -> None:
    one_phase = StackedProfile(1, 0, 0, TXDEFAULT, Kind.RELATIVE, Unit.AMPS, (Period(0, 16, 1),))
    assert shape(composite_schedule([one_phase], connector_id=1, start=START, duration=60,
                                    unit=Unit.WATTS)) == [(0, 16 * 230)]
    three = StackedProfile(1, 0, 0, TXDEFAULT, Kind.RELATIVE, Unit.AMPS, (Period(0, 16),))
    assert shape(composite_schedule([three], connector_id=1, start=START, duration=60,
                                    unit=Unit.WATTS, supply=Supply(230, 1))) == [(0, 16 * 230)]


def test_the_charge_point_total_sums_the_connectors_under_the_maximum() -> None:
    default = stacked(1, TXDEFAULT, [(0, 16)], kind=Kind.RELATIVE)
    own = stacked(2, TXDEFAULT, [(0, 6)], connector_id=2, kind=Kind.RELATIVE)
    cp_max = stacked(3, CPMAX, [(0, 40), (600, 20)], kind=Kind.RELATIVE)
    loads = [ConnectorLoad(c, None, Supply(), 22_000) for c in (1, 2)]
    got = charge_point_schedule([default, own, cp_max], loads, start=START, duration=3600,
                                unit=Unit.AMPS)
    assert shape(got) == [(0, 22), (600, 20)]


# --- the reference --------------------------------------------------------------------------------


def reference_period(p: StackedProfile, t: float, anchor: float) -> Period | None:
    """The period of ``p`` in force at ``t``, written from the spec's text."""
    if (p.valid_from is not None and t < p.valid_from) or (
            p.valid_to is not None and t >= p.valid_to):
        return None
    length = p.duration
    if p.kind == Kind.RECURRING:
        assert p.start_schedule is not None and p.recurrency is not None
        every = DAY if p.recurrency == RecurrencyKind.DAILY else 7 * DAY
        begin = p.start_schedule + math.floor((t - p.start_schedule) / every) * every
        length = every if length is None else min(length, every)
    elif p.kind == Kind.ABSOLUTE and p.start_schedule is not None:
        begin = p.start_schedule
    else:
        begin = anchor
    offset = t - begin
    if offset < 0 or (length is not None and offset >= length):
        return None
    started = [q for q in p.periods if q.start <= offset]
    return started[-1] if started else None


def watts(p: StackedProfile, period: Period, supply_phases: int) -> float:
    phases = min(period.phases or 3, supply_phases)
    return period.limit * 230.0 * phases if p.unit == Unit.AMPS else period.limit


def prevailing(profiles: list[StackedProfile], purpose: Purpose, t: float, anchor: float,
               supply_phases: int) -> float | None:
    """The limit (W) of ``purpose``'s profile in force at ``t`` on connector 1, or None."""
    live = [(p.stack_level, p.connector_id == 1, watts(p, period, supply_phases))
            for p in profiles if p.purpose == purpose
            for period in [reference_period(p, t, anchor)] if period is not None]
    return max(live)[2] if live else None


def expected(profiles: list[StackedProfile], t: float, anchor: float, phases: int,
             ceiling: float | None) -> float | None:
    tx = prevailing(profiles, TX, t, anchor, phases)
    if tx is None:
        tx = prevailing(profiles, TXDEFAULT, t, anchor, phases)
    limits = [x for x in (tx, prevailing(profiles, CPMAX, t, anchor, phases), ceiling)
              if x is not None]
    return min(limits) if limits else None


# --- strategies ---------------------------------------------------------------------------------

_times = st.integers(-2 * 86_400, 86_400).map(lambda s: START + s)


@st.composite
def profiles(draw: st.DrawFn, profile_id: int) -> StackedProfile:
    purpose = draw(st.sampled_from([CPMAX, TXDEFAULT, TX]))
    kind = draw(st.sampled_from(list(Kind)))
    unit = draw(st.sampled_from(list(Unit)))
    gaps = draw(st.lists(st.integers(1, 7200), max_size=3))
    starts = [0, *(sum(gaps[:i + 1]) for i in range(len(gaps)))]
    top = 64 if unit == Unit.AMPS else 40_000
    periods = tuple(Period(float(s), float(draw(st.integers(0, top))),
                           draw(st.sampled_from([None, 1, 2, 3]))) for s in starts)
    valid_from = draw(st.none() | _times)
    valid_to = draw(st.none() | _times)
    recurring = kind == Kind.RECURRING
    return StackedProfile(
        profile_id=profile_id,
        connector_id={CPMAX: 0, TX: 1, TXDEFAULT: draw(st.sampled_from([0, 1]))}[purpose],
        stack_level=draw(st.integers(0, 3)), purpose=purpose, kind=kind, unit=unit,
        periods=periods,
        duration=draw(st.none() | st.integers(60, 30_000).map(float)),
        start_schedule=draw(_times if recurring else st.none() | _times),
        recurrency=draw(st.sampled_from(list(RecurrencyKind))) if recurring else None,
        valid_from=valid_from, valid_to=valid_to,
    )


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[StackedProfile], float | None, int, float | None]:
    """Installed profiles, a transaction start (or none), the supply's phases, a ceiling."""
    count = draw(st.integers(0, 6))
    # as the store keeps them: one profile per purpose, connector and stack level (the last)
    installed = list({(p.purpose, p.connector_id, p.stack_level): p
                      for p in (draw(profiles(i)) for i in range(count))}.values())
    tx_start = draw(st.none() | st.integers(-7200, 0).map(lambda s: START + s))
    return (installed, tx_start, draw(st.sampled_from([1, 3])),
            draw(st.none() | st.integers(0, 30_000).map(float)))


PROPERTY = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
DURATION = 2 * DAY


def instants(composite: Composite) -> list[float]:
    """Every period's start, and instants inside and just before each period."""
    out = [START + DURATION / 3]
    for p in composite.periods:
        out += [START + p.start, START + p.start + 0.5, max(START, START + p.start - 0.5)]
    return out


def build(scene: tuple[list[StackedProfile], float | None, int, float | None],
          profiles: list[StackedProfile] | None = None) -> Composite:
    installed, tx_start, phases, ceiling = scene
    return composite_schedule(profiles if profiles is not None else installed, connector_id=1,
                              start=START, duration=DURATION, unit=Unit.WATTS,
                              transaction_start=tx_start, supply=Supply(230.0, phases),
                              ceiling_w=ceiling)


# --- properties ---------------------------------------------------------------------------------


@PROPERTY
@given(scenes())
def test_the_composite_is_the_least_limit_in_force(scene: tuple[
        list[StackedProfile], float | None, int, float | None]) -> None:
    installed, tx_start, phases, ceiling = scene
    composite = build(scene)
    anchor = START if tx_start is None else tx_start
    for t in instants(composite):
        want = expected(installed, t, anchor, phases, ceiling)
        got = composite.limit_at(t)
        assert (got is None) == (want is None), t - START
        if got is not None and want is not None:
            assert got == pytest.approx(want), t - START


@PROPERTY
@given(scenes())
def test_the_limit_never_exceeds_a_profile_in_force(scene: tuple[
        list[StackedProfile], float | None, int, float | None]) -> None:
    installed, tx_start, phases, ceiling = scene
    composite = build(scene)
    anchor = START if tx_start is None else tx_start
    for t in instants(composite):
        got = composite.limit_at(t)
        tx = prevailing(installed, TX, t, anchor, phases)
        caps = [tx if tx is not None else prevailing(installed, TXDEFAULT, t, anchor, phases),
                prevailing(installed, CPMAX, t, anchor, phases), ceiling]
        for cap in caps:
            if cap is not None:
                assert got is not None and got <= cap + 1e-9


@PROPERTY
@given(scenes())
def test_a_tx_profile_overrides_the_default(scene: tuple[
        list[StackedProfile], float | None, int, float | None]) -> None:
    installed, tx_start, phases, _ = scene
    without_defaults = [p for p in installed if p.purpose != TXDEFAULT]
    composite, reduced = build(scene), build(scene, without_defaults)
    anchor = START if tx_start is None else tx_start
    for t in instants(composite) + instants(reduced):
        if prevailing(installed, TX, t, anchor, phases) is not None:
            assert composite.limit_at(t) == reduced.limit_at(t)


@PROPERTY
@given(scenes())
def test_the_charge_point_maximum_caps_everything(scene: tuple[
        list[StackedProfile], float | None, int, float | None]) -> None:
    installed, tx_start, phases, _ = scene
    uncapped = build(scene, [p for p in installed if p.purpose != CPMAX])
    composite = build(scene)
    anchor = START if tx_start is None else tx_start
    for t in instants(composite) + instants(uncapped):
        cap = prevailing(installed, CPMAX, t, anchor, phases)
        got, free = composite.limit_at(t), uncapped.limit_at(t)
        if cap is None:
            assert got == free
        else:
            assert got == pytest.approx(cap if free is None else min(free, cap))


@PROPERTY
@given(scenes())
def test_periods_start_at_zero_ascend_and_are_merged(scene: tuple[
        list[StackedProfile], float | None, int, float | None]) -> None:
    periods = build(scene).periods
    assert periods[0].start == 0
    for before, after in itertools.pairwise(periods):
        assert before.start < after.start < DURATION
        assert (before.limit, before.phases) != (after.limit, after.phases)


@PROPERTY
@given(scenes(), st.integers(1, 4))
def test_the_charge_point_total_stays_under_its_maximum(scene: tuple[
        list[StackedProfile], float | None, int, float | None], connectors: int) -> None:
    installed, tx_start, phases, ceiling = scene
    loads = [ConnectorLoad(c, tx_start, Supply(230.0, phases), ceiling)
             for c in range(1, connectors + 1)]
    total = charge_point_schedule(installed, loads, start=START, duration=DURATION,
                                  unit=Unit.WATTS, supply=Supply(230.0, phases))
    for t in instants(total):
        cap = prevailing(installed, CPMAX, t, START, phases)
        got = total.limit_at(t)
        if cap is not None:
            assert got is not None and got <= cap + 1e-9
