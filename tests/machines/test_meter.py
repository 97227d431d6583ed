"""The meter model: power physics, exact integration, registers, sampling and the schedule."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.machines.measurands import (
    MEASURAND_LOCATIONS,
    MEASURAND_PHASES,
    MEASURAND_UNITS,
    SUPPORTED_MEASURANDS,
    MeasurandSpec,
    UnsupportedMeasurand,
    format_measurand_list,
    parse_measurand_list,
)
from simulator.machines.meter import EvSpec, LimitUnit, Meter
from simulator.machines.sampling import meter_value, next_clock_aligned, next_periodic_sample
from simulator.ocpp.v16 import (
    Location,
    Measurand,
    MeterValuesRequest,
    Phase,
    ReadingContext,
    UnitOfMeasure,
    ValueFormat,
    encode_payload,
)
from tests.oracle import ORACLE

M = Measurand
EPOCH = 1_700_000_000.0
EV = EvSpec(battery_kwh=60, initial_soc=20, target_soc=80, max_power_kw=11)


def make_meter(seed: int = 1, **kwargs: float) -> Meter:
    options: dict[str, float] = {"max_power_kw": 22.0, **kwargs}
    return Meter(1, rng=random.Random(seed), now=0.0, **options)  # type: ignore[arg-type]


def charging_meter(ev: EvSpec = EV, **kwargs: float) -> Meter:
    meter = make_meter(**kwargs)
    meter.plug_in(ev, 0.0)
    meter.set_delivering(True, 0.0)
    return meter


def every_spec() -> list[MeasurandSpec]:
    specs: list[MeasurandSpec] = []
    for m in Measurand:
        specs.append(MeasurandSpec(m))
        specs.extend(MeasurandSpec(m, p) for p in sorted(MEASURAND_PHASES[m]))
    return specs


# --- measurand lists -----------------------------------------------------------------------------


def test_every_measurand_is_supported_with_a_unit_and_a_location() -> None:
    assert frozenset(Measurand) == SUPPORTED_MEASURANDS
    assert set(MEASURAND_UNITS) == set(Measurand) == set(MEASURAND_LOCATIONS)


def test_parse_round_trips_every_entry() -> None:
    text = format_measurand_list(every_spec())
    assert parse_measurand_list(text) == tuple(every_spec())
    assert parse_measurand_list(" Voltage.L1 , ,Current.Import.L2,SoC ") == (
        MeasurandSpec(M.VOLTAGE, Phase.L1),
        MeasurandSpec(M.CURRENT_IMPORT, Phase.L2),
        MeasurandSpec(M.SOC),
    )
    assert parse_measurand_list("") == ()


@pytest.mark.parametrize(
    "entry",
    [
        "Energy",
        "Voltage.L4",
        "SoC.L1",
        "Frequency.N",
        "Temperature.L1",
        "Energy.Active.Import.Register.N",
        "Power.Offered.L1",
        "Current.Import.L1-L2",
        "energy.active.import.register",
        "Voltage.",
    ],
)
def test_unsupported_entries_are_refused(entry: str) -> None:
    with pytest.raises(UnsupportedMeasurand) as info:
        parse_measurand_list(f"Energy.Active.Import.Register,{entry}")
    assert info.value.entry == entry


# --- power ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ev", "meter_options", "limit", "expected_w"),
    [
        (EV, {}, None, 11000.0),
        (EvSpec(max_power_kw=50), {}, None, 22000.0),
        (EvSpec(max_power_kw=7.4, phases=1), {}, None, 22000.0 / 3),
        (EvSpec(max_power_kw=50, phases=2), {"phases": 3}, None, 22000.0 * 2 / 3),
        (EvSpec(max_power_kw=50), {}, (16.0, LimitUnit.A), 16 * 230.0 * 3),
        (EvSpec(max_power_kw=50, phases=1), {}, (16.0, "A"), 16 * 230.0),
        (EvSpec(max_power_kw=50), {}, (4000.0, "W"), 4000.0),
        (EvSpec(max_power_kw=50), {}, (0.0, "W"), 0.0),
        (EvSpec(max_power_kw=50), {"max_power_kw": 3.7, "phases": 1}, None, 3700.0),
        (EvSpec(initial_soc=90, max_power_kw=10), {}, None, 5000.0),
        (EvSpec(initial_soc=100, max_power_kw=10), {}, None, 0.0),
    ],
)
def test_power_is_the_least_of_rating_limit_and_ev(
    ev: EvSpec,
    meter_options: dict[str, float],
    limit: tuple[float, str] | None,
    expected_w: float,
) -> None:
    meter = charging_meter(ev, **meter_options)
    if limit is not None:
        meter.set_limit(limit[0], limit[1], 0.0)
    assert meter.power_w() == pytest.approx(expected_w)


def test_no_power_without_an_ev_or_a_closed_contactor() -> None:
    meter = make_meter()
    meter.set_delivering(True, 0.0)
    assert meter.power_w() == 0.0
    meter.plug_in(EV, 1.0)
    meter.set_delivering(False, 1.0)
    assert meter.power_w() == 0.0
    meter.advance(3600.0)
    assert meter.register_wh == 0.0
    assert meter.soc == 20.0


def test_limit_can_be_removed_and_is_validated() -> None:
    meter = charging_meter(EvSpec(max_power_kw=50))
    meter.set_limit(1000.0, "W", 0.0)
    meter.set_limit(None, "W", 0.0)
    assert meter.power_w() == pytest.approx(22000.0)
    with pytest.raises(ValueError, match="negative"):
        meter.set_limit(-1.0, "W", 0.0)
    with pytest.raises(ValueError):
        meter.set_limit(1.0, "kW", 0.0)


def test_the_limit_in_force_is_readable_in_watts() -> None:
    meter = charging_meter(EvSpec(max_power_kw=50))
    assert meter.limit_w is None
    meter.set_limit(10.0, "A", 0.0)
    assert meter.limit_w == pytest.approx(10.0 * 230.0 * 3)
    meter.set_limit(0.0, "W", 0.0)
    assert meter.limit_w == 0.0 and meter.power_w() == 0.0
    meter.set_limit(None, "W", 0.0)
    assert meter.limit_w is None


def test_the_ev_stops_at_its_target_and_signals_full() -> None:
    meter = charging_meter()
    needed_s = 36_000.0 / 11_000.0 * 3600.0  # 20 % -> 80 % of 60 kWh at 11 kW
    meter.advance(needed_s - 1)
    assert not meter.ev_full
    meter.advance(needed_s + 3600)
    assert meter.ev_full
    assert meter.power_w() == 0.0
    assert meter.register_wh == pytest.approx(36_000.0)
    assert meter.soc == pytest.approx(80.0)


def test_energy_wanted_caps_the_session() -> None:
    meter = charging_meter(EvSpec(energy_wanted_kwh=5.0, max_power_kw=11))
    meter.advance(10 * 3600.0)
    assert meter.register_wh == pytest.approx(5000.0)
    assert meter.ev_full


def test_taper_follows_the_exponential_exactly() -> None:
    ev = EvSpec(battery_kwh=50, initial_soc=80, target_soc=100, max_power_kw=10)
    meter = charging_meter(ev)
    k = 10_000.0 / 20.0 / 50_000.0 * 100.0 / 3600.0
    meter.advance(math.log(2) / k)  # halves the distance to 100 %
    assert meter.soc == pytest.approx(90.0)
    assert meter.register_wh == pytest.approx(5000.0)
    assert meter.power_w() == pytest.approx(5000.0)


def test_limit_below_ev_power_moves_the_taper_knee() -> None:
    # EV 10 kW, cap 2.5 kW: constant 2.5 kW up to 95 % (where 10 kW·(100-s)/20 = 2.5 kW).
    ev = EvSpec(battery_kwh=10, initial_soc=90, target_soc=100, max_power_kw=10)
    meter = charging_meter(ev)
    meter.set_limit(2500.0, "W", 0.0)
    meter.advance(0.5 * 3600 / 2.5)  # 0.5 kWh at 2.5 kW = 5 % of 10 kWh
    assert meter.soc == pytest.approx(95.0)
    assert meter.power_w() == pytest.approx(2500.0)
    meter.advance(0.5 * 3600 / 2.5 + 600)
    assert meter.power_w() < 2500.0


def test_register_is_kept_across_sessions_and_restored() -> None:
    meter = make_meter(register_wh=1234.9)
    assert meter.meter_value_wh() == 1234
    meter.plug_in(EvSpec(energy_wanted_kwh=1.0), 0.0)
    meter.set_delivering(True, 0.0)
    meter.advance(7200.0)
    meter.set_delivering(False, 7200.0)
    meter.unplug(7200.0)
    assert meter.register_wh == pytest.approx(2234.9)
    assert meter.meter_value_wh() == 2234
    meter.plug_in(EvSpec(energy_wanted_kwh=0.5), 7300.0)
    meter.advance(9000.0)
    assert meter.register_wh == pytest.approx(2234.9)  # contactor open: nothing flows
    meter.set_delivering(True, 9000.0)
    meter.advance(20000.0)
    assert meter.register_wh == pytest.approx(2734.9)


def test_time_cannot_go_backwards() -> None:
    meter = make_meter()
    meter.advance(5.0)
    with pytest.raises(ValueError, match="backwards"):
        meter.advance(4.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"battery_kwh": 0},
        {"initial_soc": -1},
        {"target_soc": 101},
        {"max_power_kw": -1},
        {"energy_wanted_kwh": -1},
        {"phases": 4},
    ],
)
def test_ev_spec_validation(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EvSpec(**bad)  # type: ignore[arg-type]


_OPS = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=5000, allow_nan=False),
        st.sampled_from(["advance", "limit_w", "limit_a", "clear", "plug", "unplug", "on", "off"]),
        st.floats(min_value=0, max_value=40_000, allow_nan=False),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS, seed=st.integers(0, 2**32))
def test_register_never_decreases_and_is_granularity_free(
    ops: list[tuple[float, str, float]], seed: int
) -> None:
    coarse, fine = make_meter(seed), make_meter(seed)
    now = 0.0
    last = 0.0
    for gap, op, value in ops:
        # the fine meter is advanced at many intermediate instants; the coarse one is not
        for i in range(1, 4):
            fine.advance(now + gap * i / 4)
        now += gap
        for meter in (coarse, fine):
            match op:
                case "advance":
                    meter.advance(now)
                case "limit_w":
                    meter.set_limit(value, "W", now)
                case "limit_a":
                    meter.set_limit(value / 1000, "A", now)
                case "clear":
                    meter.set_limit(None, "W", now)
                case "plug":
                    meter.plug_in(EvSpec(initial_soc=value % 100), now)
                case "unplug":
                    meter.unplug(now)
                case "on":
                    meter.set_delivering(True, now)
                case "off":
                    meter.set_delivering(False, now)
        coarse.advance(now)
        fine.advance(now)
        assert coarse.register_wh >= last
        assert fine.register_wh == pytest.approx(coarse.register_wh, rel=1e-9, abs=1e-6)
        last = coarse.register_wh
        reading = coarse.reading(now)
        assert sum(reading.active_import_wh) == pytest.approx(coarse.register_wh)
        assert min(reading.active_import_wh + reading.reactive_import_varh) >= 0


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=0.001, max_value=3000), min_size=1, max_size=40),
    soc=st.floats(min_value=0, max_value=100),
    limit=st.one_of(st.none(), st.floats(min_value=0, max_value=30_000)),
)
def test_integration_does_not_depend_on_step_size(
    steps: list[float], soc: float, limit: float | None
) -> None:
    ev = EvSpec(battery_kwh=30, initial_soc=soc, target_soc=100, max_power_kw=11)
    one, many = charging_meter(ev), charging_meter(ev)
    one.set_limit(limit, "W", 0.0)
    many.set_limit(limit, "W", 0.0)
    now = 0.0
    for step in steps:
        now += step
        many.advance(now)
    one.advance(now)
    assert many.register_wh == pytest.approx(one.register_wh, rel=1e-9, abs=1e-6)
    assert one.soc is not None and one.soc <= 100.0


# --- readings and sampled values -----------------------------------------------------------------


def test_readings_are_deterministic_and_noise_is_small() -> None:
    a, b = charging_meter(), charging_meter()
    for t in (10.0, 20.0, 30.0):
        ra, rb = a.reading(t), b.reading(t)
        assert ra == rb
        assert sum(ra.power_w) == pytest.approx(11000.0, rel=0.0101)
        for v in ra.voltage_v:
            assert v == pytest.approx(230.0, rel=0.0101)
    other = Meter(1, max_power_kw=22.0, rng=random.Random(2), now=0.0)
    other.plug_in(EV, 0.0)
    other.set_delivering(True, 0.0)
    assert other.reading(10.0) != charging_meter().reading(10.0)


def values_by_key(meter: Meter, specs: list[MeasurandSpec], now: float) -> dict[str, float]:
    sampled = meter.sample(specs, now, context=ReadingContext.SAMPLE_PERIODIC)
    return {f"{v.measurand}/{v.phase}": float(v.value) for v in sampled}


def test_phase_values_three_phase() -> None:
    meter = charging_meter()
    meter.advance(3600.0)
    values = values_by_key(meter, list(every_spec()), 3600.0)
    assert values["Energy.Active.Import.Register/None"] == pytest.approx(11000.0, abs=0.1)
    for line in ("L1", "L2", "L3"):
        assert values[f"Energy.Active.Import.Register/{line}"] == pytest.approx(11000 / 3, abs=0.1)
        assert values[f"Current.Import/{line}"] == pytest.approx(11000 / 3 / 230 / 0.99, rel=0.03)
        assert values[f"Voltage/{line}"] == pytest.approx(230.0, rel=0.011)
        assert values[f"Voltage/{line}-N"] == values[f"Voltage/{line}"]
    assert values["Voltage/L1-L2"] == pytest.approx(230 * math.sqrt(3), rel=0.011)
    assert values["Voltage/N"] == 0.0
    assert values["Current.Import/N"] < 1.0  # balanced: only noise flows in the neutral
    assert values["Power.Active.Import/None"] == pytest.approx(11000.0, rel=0.011)
    assert values["Power.Offered/None"] == 22000.0
    assert values["Current.Offered/None"] == pytest.approx(22000 / 3 / 230, abs=0.01)
    assert values["SoC/None"] == pytest.approx(20 + 11 / 60 * 100, abs=0.1)
    assert values["Power.Factor/None"] == 0.99
    assert values["Frequency/None"] == pytest.approx(50.0, rel=0.001)
    assert values["Temperature/None"] == pytest.approx(25 + 20 * 0.5, abs=0.1)
    for m in Measurand:
        if "Export" in m.value:
            assert values[f"{m}/None"] == 0.0


def test_phase_values_single_phase_ev() -> None:
    meter = charging_meter(EvSpec(max_power_kw=7.4, phases=1))
    meter.advance(60.0)
    values = values_by_key(meter, list(every_spec()), 60.0)
    assert values["Current.Import/L2"] == values["Current.Import/L3"] == 0.0
    assert values["Current.Import/N"] == pytest.approx(values["Current.Import/L1"], rel=1e-3)
    assert values["Current.Offered/L2"] == 0.0
    assert values["Energy.Active.Import.Register/L2"] == 0.0
    assert values["Energy.Active.Import.Register/L1"] > 0.0


def test_soc_is_left_out_without_an_ev() -> None:
    meter = make_meter()
    sampled = meter.sample(
        [MeasurandSpec(M.SOC), MeasurandSpec(M.VOLTAGE)], 1.0, context=ReadingContext.TRIGGER
    )
    assert [v.measurand for v in sampled] == [M.VOLTAGE]


@pytest.mark.parametrize("spec", every_spec(), ids=str)
def test_each_sampled_value_carries_unit_phase_context_location_format(spec: MeasurandSpec) -> None:
    meter = charging_meter()
    (value,) = meter.sample([spec], 10.0, context=ReadingContext.SAMPLE_CLOCK)
    assert value.measurand == spec.measurand
    assert value.phase == spec.phase
    assert value.unit == MEASURAND_UNITS[spec.measurand]
    assert value.location == MEASURAND_LOCATIONS[spec.measurand]
    assert value.context == ReadingContext.SAMPLE_CLOCK
    assert value.format == ValueFormat.RAW
    float(value.value)  # a decimal string
    assert "e" not in value.value.lower() and not value.value.startswith("-")


@pytest.mark.parametrize(
    ("measurand", "unit", "location"),
    [
        (M.ENERGY_ACTIVE_IMPORT_REGISTER, UnitOfMeasure.WH, Location.OUTLET),
        (M.ENERGY_REACTIVE_EXPORT_INTERVAL, UnitOfMeasure.VARH, Location.OUTLET),
        (M.POWER_REACTIVE_IMPORT, UnitOfMeasure.VAR, Location.OUTLET),
        (M.POWER_OFFERED, UnitOfMeasure.W, Location.OUTLET),
        (M.CURRENT_OFFERED, UnitOfMeasure.A, Location.OUTLET),
        (M.VOLTAGE, UnitOfMeasure.V, Location.OUTLET),
        (M.FREQUENCY, None, Location.OUTLET),
        (M.POWER_FACTOR, None, Location.OUTLET),
        (M.TEMPERATURE, UnitOfMeasure.CELSIUS, Location.BODY),
        (M.SOC, UnitOfMeasure.PERCENT, Location.EV),
        (M.RPM, None, Location.BODY),
    ],
)
def test_units_and_locations(
    measurand: Measurand, unit: UnitOfMeasure | None, location: Location
) -> None:
    assert (MEASURAND_UNITS[measurand], MEASURAND_LOCATIONS[measurand]) == (unit, location)


def test_interval_values_cover_one_stream_interval() -> None:
    meter = charging_meter()
    interval = [MeasurandSpec(M.ENERGY_ACTIVE_IMPORT_INTERVAL)]
    meter.mark("periodic", 0.0)
    first = meter.sample(
        interval, 3600.0, context=ReadingContext.SAMPLE_PERIODIC, stream="periodic"
    )
    meter.advance(5400.0)
    clock = meter.sample(interval, 5400.0, context=ReadingContext.SAMPLE_CLOCK, stream="clock")
    second = meter.sample(
        interval, 7200.0, context=ReadingContext.SAMPLE_PERIODIC, stream="periodic"
    )
    assert float(first[0].value) == pytest.approx(11000.0, abs=0.1)
    assert float(second[0].value) == pytest.approx(11000.0, abs=0.1)
    assert float(clock[0].value) == pytest.approx(11000.0 * 1.5, abs=0.1)  # no mark: since zero


def test_meter_values_payload_is_schema_valid() -> None:
    meter = charging_meter()
    reading = meter.reading(900.0)
    contexts = list(ReadingContext)
    values = tuple(
        meter_value(reading, every_spec(), context=c, wall_offset=EPOCH) for c in contexts
    )
    assert values[0].timestamp == dt.datetime.fromtimestamp(EPOCH + 900.0, tz=dt.UTC)
    request = MeterValuesRequest(connector_id=1, transaction_id=7, meter_value=values)
    assert ORACLE.errors("MeterValues", "request", encode_payload(request)) == []


# --- schedule ------------------------------------------------------------------------------------

MIDNIGHT = 1_699_920_000.0  # 2023-11-14T00:00:00Z


@pytest.mark.parametrize(
    ("wall_now", "interval", "expected_wall"),
    [
        (MIDNIGHT + 450, 900, MIDNIGHT + 900),
        (MIDNIGHT + 900, 900, MIDNIGHT + 1800),  # on the grid: the next one
        (MIDNIGHT, 900, MIDNIGHT + 900),
        (MIDNIGHT + 86399, 900, MIDNIGHT + 86400),
        (MIDNIGHT + 22 * 3600, 7 * 3600, MIDNIGHT + 86400),  # grid restarts at midnight
        (MIDNIGHT + 3 * 3600, 7 * 3600, MIDNIGHT + 7 * 3600),
        (MIDNIGHT + 10.5, 1, MIDNIGHT + 11),
    ],
)
def test_next_clock_aligned(wall_now: float, interval: int, expected_wall: float) -> None:
    offset = MIDNIGHT - 5000.0  # monotonic now = wall - offset
    now = wall_now - offset
    assert next_clock_aligned(now, wall_offset=offset, interval=interval) == pytest.approx(
        expected_wall - offset
    )


def test_clock_alignment_off() -> None:
    assert next_clock_aligned(5.0, wall_offset=MIDNIGHT, interval=0) is None


@pytest.mark.parametrize(
    ("now", "start", "interval", "expected"),
    [
        (100.0, 100.0, 60, 160.0),
        (159.9, 100.0, 60, 160.0),
        (160.0, 100.0, 60, 220.0),
        (50.0, 100.0, 60, 160.0),
        (500.0, 100.0, 0, None),
    ],
)
def test_next_periodic_sample(
    now: float, start: float, interval: int, expected: float | None
) -> None:
    assert next_periodic_sample(now, start=start, interval=interval) == expected


def test_next_sample_is_strictly_later_even_when_float_rounding_lands_on_now() -> None:
    # (282.025316 - 77.025316) / 5 is 40.99999999999999 in binary floating point: the naive
    # formula returned ``now`` itself, and a mock clock then sampled forever at one instant.
    start, interval = 77.025316, 5
    now = start + 41 * interval
    assert next_periodic_sample(now, start=start, interval=interval) > now
    for k in range(2000):
        moment = start + k * interval
        nxt = next_periodic_sample(moment, start=start, interval=interval)
        assert nxt is not None and moment < nxt <= moment + interval + 1e-9


def test_next_clock_aligned_is_strictly_later_on_grid_points() -> None:
    wall_offset = 1_767_225_600.123456
    for k in range(1, 3000):
        moment = k * 15 - 0.123456
        nxt = next_clock_aligned(moment, wall_offset=wall_offset, interval=15)
        assert nxt is not None and moment < nxt <= moment + 15 + 1e-6
