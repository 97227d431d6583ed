"""Targets: who a fault or step applies to, checked without a fleet."""

from __future__ import annotations

import pytest

from simulator.chaos import CatalogError, Target, check_target


def test_targets() -> None:
    assert check_target() == Target(ids=(), group=None, fraction=1.0, connector=None)
    assert check_target(ids=["AC-1", "AC-2"], connector=1) == Target(
        ids=("AC-1", "AC-2"), connector=1
    )
    assert check_target(group="street", fraction=0.2).fraction == 0.2


@pytest.mark.parametrize(
    ("arguments", "path", "message"),
    [
        ({"ids": ["AC-1"], "group": "street"}, (), "give ids or group, not both"),
        ({"ids": []}, ("ids",), "is empty; list charger ids or leave ids out"),
        ({"fraction": 1.5}, ("fraction",), "must be within 0..1, got 1.5"),
        ({"connector": -1}, ("connector",), "must be >= 0, got -1"),
    ],
)
def test_target_errors_say_where(
    arguments: dict[str, object], path: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        check_target(**arguments)  # type: ignore[arg-type]
    assert (caught.value.path, caught.value.message) == (path, message)


def test_a_tag_target_excludes_ids_and_group() -> None:
    assert check_target(tag="urban", fraction=0.5) == Target(tag="urban", fraction=0.5)
    for arguments, message in [({"tag": "urban", "group": "street"}, "give group or tag, not both"),
                               ({"tag": "urban", "ids": ["AC-1"]}, "give ids or tag, not both"),
                               ({"tag": "u", "ids": ["A"], "group": "g"},
                                "give one of ids, group or tag")]:
        with pytest.raises(CatalogError, match=message):
            check_target(**arguments)  # type: ignore[arg-type]
    with pytest.raises(CatalogError, match="is empty"):
        check_target(tag="")
