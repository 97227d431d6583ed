"""The resolved fleet for readers: ``Fleet.text`` (round trip, secrets), ``describe`` and the
JSON schema."""

from __future__ import annotations

import hashlib
import json
import tomllib
from typing import Any

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from simulator.config import Secret, describe, json_schema, parse_fleet
from tests.config.documents import DESIGN_SKETCH, GROUP, INTEROP, NO_ENV, SCENARIOS, SECURE, parse

# --- the resolved text, secrets, describe, schema -------------------------------------------------


def test_text_round_trips_to_the_same_fleet() -> None:
    for text in (INTEROP, DESIGN_SKETCH, (SCENARIOS / "fleet.toml").read_text()):
        fleet = parse(text)
        again = parse(fleet.text)
        assert again == fleet
        assert fleet.sha256 == hashlib.sha256(fleet.text.encode()).hexdigest()


def test_text_keeps_literal_dollar_braces() -> None:
    text = GROUP.replace('model = "AC22"', 'model = "$${M}"')
    fleet = parse(text)
    assert fleet.groups[0].model == "${M}"
    assert parse(fleet.text) == fleet


def test_duration_pattern_in_the_schema_matches_the_parser() -> None:
    duration = json_schema()["$defs"]["RunTable"]["properties"]["duration"]
    validator = jsonschema.Draft202012Validator(duration)
    for good in ["500ms", "30s", "1h30m", " 2 m ", "30", "1.5h", 0, 2.5]:
        assert validator.is_valid(good), good
    for bad in ["5x", "", "h", "-5s", "5 10s", -1]:
        assert not validator.is_valid(bad), bad


def test_text_is_resolved() -> None:
    fleet = parse(INTEROP, env={"SIM_RUN__SEED": "11"}, overrides={"run.duration": "1m"})
    data = tomllib.loads(fleet.text)
    assert data["run"] == {
        "name": "interop",
        "seed": 11,
        "duration": "1m",
        "ledger": "runs/interop.db",
        "time": "real",
        "validate_csms": False,
    }
    assert data["group"][0]["connect_rate"] == 50
    assert "step" not in data


def test_secrets_never_reach_the_text() -> None:
    fleet = parse(SECURE, env={"PW": "hunter2"})
    assert fleet.csms.password == "hunter2"
    assert isinstance(fleet.csms.password, Secret)
    assert "hunter2" not in repr(fleet)
    assert "hunter2" not in fleet.text and "00ff" not in fleet.text
    assert "hunter2" not in describe(fleet)
    data = tomllib.loads(fleet.text)
    assert data["csms"]["password"] == "${PW}"  # the reference, which is not the secret
    assert data["group"][0]["config"]["AuthorizationKey"] == "<redacted>"
    assert data["csms"]["ca_file"] == "ca.pem"


def test_literal_and_overridden_secrets_are_redacted() -> None:
    literal = parse(SECURE.replace("${PW}", "hunter2"))
    assert "hunter2" not in literal.text
    assert tomllib.loads(literal.text)["csms"]["password"] == "<redacted>"
    overridden = parse(SECURE, env={"PW": "a", "SIM_CSMS__PASSWORD": "hunter3"})
    assert overridden.csms.password == "hunter3"
    assert tomllib.loads(overridden.text)["csms"]["password"] == "<redacted>"


def test_describe_summarises_the_fleet() -> None:
    fleet = parse_fleet(DESIGN_SKETCH, source="lab.toml", env=NO_ENV)
    text = describe(fleet)
    assert "run 'lab', seed 42, duration 2m" in text
    assert "street: 50 x AC-0001 .. AC-0050" in text
    assert "1 step(s), 1 fault(s), 2 expectation(s)" in text
    assert text.endswith(fleet.text)


def test_json_schema_validates_the_shipped_and_documented_files() -> None:
    schema = json_schema()
    json.dumps(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    documents = [INTEROP, DESIGN_SKETCH, SECURE]
    documents += [path.read_text() for path in sorted(SCENARIOS.glob("*.toml"))]
    for text in documents:
        validator.validate(tomllib.loads(text))
        validator.validate(tomllib.loads(parse(text, env={"PW": "x"}).text))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["group"][0].update(conut=1),
        lambda d: d["group"][0].update(count=0),
        lambda d: d["group"][0].update(vendor="x" * 21),
        lambda d: d["run"].update(time="later"),
        lambda d: d.update(chaos=[{"fault": "nope"}]),
        lambda d: d.update(step=[{"at": "1s", "do": "dance"}]),
        lambda d: d.update(expect=[{"p95": "2s"}]),
        lambda d: d["group"][0]["config"].update(Key={"x": 1}),
        lambda d: d.pop("group"),
    ],
)
def test_json_schema_rejects_what_the_loader_rejects(mutate: Any) -> None:
    data = tomllib.loads(INTEROP)
    mutate(data)
    assert not jsonschema.Draft202012Validator(json_schema()).is_valid(data)
