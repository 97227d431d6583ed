"""The chaos catalog: the fault names by family (docs/architecture.md), and the rules of a
fault's schedule."""

from __future__ import annotations

import math

import pytest

from simulator.chaos import (
    CATALOG,
    FAULTS,
    CatalogError,
    Family,
    Schedule,
    check_fault,
    check_schedule,
    family_of,
)


def test_every_fault_has_one_family() -> None:
    assert len(FAULTS) == sum(len(names) for names in CATALOG.values()) == 36
    assert set(CATALOG) == set(Family)
    for family, names in CATALOG.items():
        for name in names:
            assert family_of(name) is family


@pytest.mark.parametrize(
    ("fault", "family"),
    [
        ("latency", Family.TRANSPORT),
        ("half_open", Family.TRANSPORT),
        ("malformed_json", Family.PROTOCOL),
        ("clock_skew", Family.BEHAVIOUR),
        ("power_loss", Family.BEHAVIOUR),
        ("blackout", Family.FLEET),
    ],
)
def test_design_names_are_in_their_family(fault: str, family: Family) -> None:
    assert check_fault(fault) == fault
    assert family_of(fault) is family


def test_an_unknown_fault_names_the_key_and_suggests_the_closest() -> None:
    with pytest.raises(CatalogError) as caught:
        check_fault("disconect")
    assert caught.value.path == ("fault",)
    assert caught.value.message.startswith('unknown fault "disconect"; expected one of ')
    assert caught.value.message.endswith("did you mean 'disconnect'?")
    with pytest.raises(CatalogError):
        family_of("nope")


def test_schedule_defaults_and_values() -> None:
    assert check_schedule() == Schedule(at=0.0, every=None, probability=1.0, for_=None)
    assert check_schedule(at=30.0, every=60.0, probability=0.25, lasting=20.0) == Schedule(
        at=30.0, every=60.0, probability=0.25, for_=20.0
    )


@pytest.mark.parametrize(
    ("arguments", "path", "message"),
    [
        ({"every": 0.0}, "every", "must be longer than 0s, got 0s"),
        ({"every": 1e-300}, "every", "must be at least 1ms (a rule firing more often would do "
                                     "nothing else), got 1e-300s"),
        ({"lasting": 0.0}, "for", "must be longer than 0s, got 0s"),
        ({"at": -1.0}, "at", "must be a finite number of seconds >= 0, got -1s"),
        ({"at": math.inf}, "at", "must be a finite number of seconds >= 0, got inf"),
        ({"probability": 1.5}, "probability", "must be within 0..1, got 1.5"),
        ({"probability": -0.1}, "probability", "must be within 0..1, got -0.1"),
        ({"probability": math.nan}, "probability", "must be within 0..1, got nan"),
    ],
)
def test_schedule_errors_name_the_key(
    arguments: dict[str, float], path: str, message: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        check_schedule(**arguments)
    assert (caught.value.path, caught.value.message) == ((path,), message)
