"""Durations and ranges as written in fleet files (``simulator.durations``)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.durations import (
    DurationError,
    Range,
    format_duration,
    format_range,
    parse_duration,
    parse_duration_range,
    parse_number_range,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1h 30m", 5400.0),
        (" 2m ", 120.0),
        ("1m30s250ms", 90.25),
        ("30", 30.0),
        ("0", 0.0),
        ("0s", 0.0),
        (45, 45.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("5x", "is not a duration"),
        ("", "is not a duration"),
        ("h", "is not a duration"),
        ("-5s", "is not a duration"),
        ("1h-30m", "is not a duration"),
        ("30m1h", "out of order"),
        ("1m1m", "out of order"),
        (-1, ">= 0"),
        (float("inf"), ">= 0"),
        (float("nan"), ">= 0"),
        (True, "got true"),
    ],
)
def test_parse_duration_rejects(text: str | float, fragment: str) -> None:
    with pytest.raises(DurationError, match=fragment) as caught:
        parse_duration(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20m..2h", Range(1200.0, 7200.0)),
        ("3s..8s", Range(3.0, 8.0)),
        ("3s .. 8s", Range(3.0, 8.0)),
        ("10..20", Range(10.0, 20.0)),
        ("30s", Range(30.0, 30.0)),
        ("5s..5s", Range(5.0, 5.0)),
        (90, Range(90.0, 90.0)),
    ],
)
def test_parse_duration_range(text: str | float, expected: Range) -> None:
    assert parse_duration_range(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5..40", Range(5.0, 40.0)),
        ("0.5..2.5", Range(0.5, 2.5)),
        ("7", Range(7.0, 7.0)),
        (12, Range(12.0, 12.0)),
        (1.5, Range(1.5, 1.5)),
    ],
)
def test_parse_number_range(text: str | float, expected: Range) -> None:
    assert parse_number_range(text) == expected


@pytest.mark.parametrize(
    ("parse", "text", "fragment"),
    [
        (parse_duration_range, "2h..20m", "above high"),
        (parse_duration_range, "20m..", "is not a range"),
        (parse_duration_range, "x..2h", "is not a range"),
        (parse_duration_range, "1..2..3", "is not a range"),
        (parse_number_range, "40..5", "above high"),
        (parse_number_range, "5kWh..40", "is not a range"),
        (parse_number_range, "lots", "not a number"),
        (parse_number_range, -3, ">= 0"),
    ],
)
def test_ranges_reject(parse: object, text: str | float, fragment: str) -> None:
    assert callable(parse)
    with pytest.raises(DurationError, match=fragment):
        parse(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (30, "30s"), (90, "1m30s"), (7200, "2h"), (86400 + 61, "1d1m1s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_range() -> None:
    assert format_range(Range(1200, 7200)) == "20m..2h"
    assert format_range(Range(30, 30)) == "30s"
    assert format_range(Range(5, 40), duration=False) == "5..40"
    assert format_range(Range(0.5, 2.5), duration=False) == "0.5..2.5"


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(DurationError):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=10**9))
def test_format_parse_round_trip_whole_milliseconds(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


def test_draw_is_uniform_within_bounds_and_seeded() -> None:
    interval = Range(3.0, 8.0)
    first = [interval.draw(random.Random(7)) for _ in range(3)]
    again = [interval.draw(random.Random(7)) for _ in range(3)]
    assert first == again
    rng = random.Random(1)
    draws = [interval.draw(rng) for _ in range(2000)]
    assert all(value in interval for value in draws)
    assert min(draws) < 3.5 and max(draws) > 7.5


def test_draw_of_a_point_range_is_the_point() -> None:
    assert Range(4.0, 4.0).draw(random.Random(0)) == 4.0
