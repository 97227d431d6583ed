"""Stage 4, the document's structure: our own walk of the declared tables words every error, and it
agrees with msgspec on what fits, so no message depends on msgspec's wording."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from typing import Any

import msgspec
import pytest

from simulator.config import ConfigError, FleetDocument
from simulator.config.errors import FieldPath, Invalid
from simulator.config.structure import check_document
from tests.config.documents import DESIGN_SKETCH, GROUP, SECURE, parse

SESSIONS = '[group.sessions]\narrivals_per_hour = 1\nid_tags = ["A"]\n'

STRUCTURE_ERRORS: list[tuple[str, str, str]] = [
    (
        "integer for a string",
        GROUP.replace('"Acme"', "5"),
        "group[0].vendor: must be a string, got an integer 5",
    ),
    (
        "number for an integer",
        GROUP.replace("count = 3", "count = 3.0"),
        "group[0].count: must be an integer, got a number 3.0",
    ),
    (
        "negative seconds",
        "[run]\nduration = -5\n" + GROUP,
        "run.duration: must be >= 0, got -5",
    ),
    (
        "true for a duration",
        "[run]\nduration = true\n" + GROUP,
        'run.duration: must be a duration such as "30s" or a number of seconds, got true',
    ),
    (
        "list for a range",
        GROUP + SESSIONS.replace("id_tags", 'duration = ["1s"]\nid_tags'),
        'group[0].sessions.duration: must be a duration such as "30s" or a range such as '
        '"20m..2h", got a list',
    ),
    (
        "table for a number range",
        GROUP + SESSIONS + "[group.sessions.energy_kwh]\nlow = 1\n",
        'group[0].sessions.energy_kwh: must be a number or a range such as "5..40", got a table',
    ),
    (
        "over-long item of a list",
        GROUP + SESSIONS.replace('["A"]', '["A", "' + "T" * 101 + '"]'),
        'group[0].sessions.id_tags[1]: must be at most 100 characters long, got 101 ("'
        + "T" * 101
        + '")',
    ),
    (
        "empty string",
        GROUP.replace('name = "ac"', 'name = ""'),
        'group[0].name: must be at least 1 characters long, got 0 ("")',
    ),
    (
        "zero for a positive number",
        GROUP.replace("connectors = 2", "connectors = 2\nmax_power_kw = 0"),
        "group[0].max_power_kw: must be > 0, got 0",
    ),
    (
        "not a number",
        GROUP.replace("connectors = 2", "connectors = 2\nconnect_rate = nan"),
        "group[0].connect_rate: must be > 0, got nan",
    ),
    (
        "empty list of groups",
        "group = []\n",
        "group: is empty; add at least one [[group]] table",
    ),
    (
        "missing key of a nested table",
        GROUP + "[group.sessions]\narrivals_per_hour = 1\n",
        "group[0].sessions.id_tags: is required; add it",
    ),
    (
        "unknown key lists the known ones",
        GROUP + "[group.sessions]\narivals_per_hour = 1\n",
        "group[0].sessions.arivals_per_hour: unknown key; did you mean 'arrivals_per_hour'? "
        "(known keys: arrivals_per_hour, duration, energy_kwh, id_tags)",
    ),
    (
        "one table for a list of tables",
        GROUP + '[step]\nat = 1\ndo = "plug"\n',
        "step: must be written [[step]] (a list of tables), not [step]",
    ),
    (
        "list in an expectation",
        GROUP + '[[expect]]\ncheck = "latency"\nactions = ["Authorize"]\n',
        "expect[0].actions: must be a string, a number or true/false, got a list",
    ),
    (
        "quoted key of a free table",
        GROUP + '[group.config]\n"Bad Key" = {}\n',
        'group[0].config["Bad Key"]: must be a string, a number or true/false, got a table',
    ),
    (
        "date-time for an integer",
        "[run]\nseed = 1979-05-27T07:32:00Z\n" + GROUP,
        "run.seed: must be an integer, got a date-time 1979-05-27T07:32:00+00:00",
    ),
    (
        "time for an integer",
        "[run]\nseed = 07:32:00\n" + GROUP,
        "run.seed: must be an integer, got a time 07:32:00",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in STRUCTURE_ERRORS], ids=[c[0] for c in STRUCTURE_ERRORS]
)
def test_structure_errors_are_worded_by_the_checker(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == f"scenarios/x.toml: {expected}"


def test_a_wrong_type_set_by_an_override_says_who_set_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GROUP, overrides={"group[0].vendor": ["x"]})
    assert str(caught.value) == (
        "scenarios/x.toml: group[0].vendor: must be a string, got a list "
        "(set by override 'group[0].vendor')"
    )


# --- the checker and msgspec agree on what fits ---------------------------------------------------

VALUES: list[object] = [
    None, True, 0, -1, 7, 1.5, -0.5, float("nan"), "", "x", "30s", "T" * 70, [], ["a"], [1],
    {}, {"a": 1}, {"a": [1]}, dt.date(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.time(7, 32),
]  # fmt: skip
"""Values of every TOML type, in and out of each field's bounds."""


def _paths(value: object, path: FieldPath = ()) -> list[FieldPath]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _document() -> dict[str, Any]:
    data = tomllib.loads(DESIGN_SKETCH)
    secure = tomllib.loads(SECURE)
    data["csms"].update(secure["csms"], cert_file="c.pem", key_file="k.pem", transport="x")
    data["csms"]["embedded"] = {"boot_status": "Accepted", "heartbeat_interval": "1m",
                                "accepted_tags": ["*"], "blocked_tags": ["B*"]}  # fmt: skip
    data["run"]["epoch"] = "2026-01-01T00:00:00Z"
    data["group"][0].update(firmware_version="1.0", serial="SN-{n}", config={"A": 1})
    data["chaos"][0].update(every="1m", probability=0.5, params={"p": 1})
    data["step"][0]["params"] = {"id_tag": "T"}
    return data


def _replace(data: dict[str, Any], path: FieldPath, value: object) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    container: Any = changed
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = value
    return changed


def _agree(data: dict[str, Any]) -> tuple[bool, bool]:
    try:
        msgspec.convert(data, FleetDocument)
        fits = True
    except msgspec.ValidationError:
        fits = False
    try:
        check_document(data)
        passes = True
    except Invalid:
        passes = False
    return fits, passes


def test_the_checker_accepts_exactly_what_msgspec_accepts() -> None:
    base = _document()
    assert _agree(base) == (True, True)
    paths = _paths(base)
    assert len(paths) > 60
    for path in paths:
        for value in VALUES:
            fits, passes = _agree(_replace(base, path, value))
            assert fits == passes, (path, value, fits)
    for path in [("nope",), ("run", "nope"), ("group", 0, "sessions", "nope")]:
        assert _agree(_replace(base, path, 1)) == (False, False)
