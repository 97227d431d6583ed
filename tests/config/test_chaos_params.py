"""``sim check`` on fault parameters, step parameters and tag targets: one line naming the file,
the key and what to write; the resolved fleet holds the checked values with their defaults."""

from __future__ import annotations

import pytest

from simulator.config import ConfigError, StepAction
from tests.config.documents import GROUP, parse

TAGGED = GROUP.replace('model = "AC22"', 'model = "AC22"\ntags = ["urban", "ac"]') + """
[[group]]
name = "dc"
count = 2
id = "DC-{n}"
vendor = "Acme"
model = "DC50"
tags = ["urban"]
"""

ERRORS: list[tuple[str, str]] = [
    (GROUP + '[[chaos]]\nfault = "reset"\n[[chaos]]\nfault = "reset"\n'
             '[[chaos]]\nfault = "latency"\nparams = { ms = 99999 }\n',
     "scenarios/x.toml: chaos[2].params.ms: must be within 0..60000, got 99999"),
    (GROUP + '[[chaos]]\nfault = "latency"\nparams = { delay = 5 }\n',
     "scenarios/x.toml: chaos[0].params.delay: unknown parameter; latency takes ms, jitter_ms, "
     "direction"),
    (GROUP + '[[chaos]]\nfault = "partition"\n',
     'scenarios/x.toml: chaos[0].for: is required: partition needs to know how long it lasts; '
     'write e.g. for = "30s"'),
    (GROUP + '[[chaos]]\nfault = "wave"\nparams = { fault = "power_loss", outage = "2d" }\n',
     "scenarios/x.toml: chaos[0].params.outage: must be within 0s..1d, got 2d"),
    (GROUP + '[[chaos]]\nfault = "reset"\ntarget = { tag = "urban" }\n',
     'scenarios/x.toml: chaos[0].target.tag: no group has the tag "urban"; add tags = [...] '
     "to a [[group]]"),
    (TAGGED + '[[chaos]]\nfault = "reset"\ntarget = { tag = "urbn" }\n',
     'scenarios/x.toml: chaos[0].target.tag: no group has the tag "urbn"; expected one of ac, '
     "urban; did you mean 'urban'?"),
    (TAGGED + '[[chaos]]\nfault = "reset"\ntarget = { tag = "urban", group = "dc" }\n',
     "scenarios/x.toml: chaos[0].target: give group or tag, not both"),
    (GROUP + '[[step]]\nat = 1\ndo = "reconnect"\n',
     'scenarios/x.toml: step[0].do: "reconnect" is no longer an action: a charger\'s link '
     "reconnects by itself after a disconnect; to keep it offline for a while, use a [[chaos]] "
     'table with fault = "partition" and for'),
    (GROUP + '[[step]]\nat = 1\ndo = "stop"\nparams = { reason = "Bored" }\n',
     'scenarios/x.toml: step[0].params.reason: unknown value "Bored"; expected one of'),
    (GROUP + '[[step]]\nat = 1\ndo = "plug"\nparams = { ev = "big" }\n',
     "scenarios/x.toml: step[0].params.ev: unknown parameter; plug takes none"),
    (GROUP + '[[step]]\nat = 1\ndo = "disconnect"\nparams = { code = 999 }\n',
     "scenarios/x.toml: step[0].params.code: must be within 1000..4999, got 999"),
]


@pytest.mark.parametrize(("text", "line"), ERRORS)
def test_one_line_names_the_key(text: str, line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(line), str(caught.value)


def test_resolved_params_hold_defaults_and_seconds() -> None:
    fleet = parse(GROUP + '[[chaos]]\nfault = "power_loss"\nparams = { outage = "1m" }\n'
                          '[[step]]\nat = 1\ndo = "stop"\n'
                          '[[step]]\nat = 2\ndo = "fault"\ntarget = { connector = 1 }\n')
    assert fleet.chaos[0].params == {"outage": 60.0}
    assert fleet.steps[0].params == {"reason": "Local"}
    assert fleet.steps[1].params == {"error_code": "OtherError"}
    assert StepAction.DISCONNECT in StepAction.__members__.values()


def test_groups_carry_tags_and_targets_name_them() -> None:
    fleet = parse(TAGGED + '[[chaos]]\nfault = "reset"\ntarget = { tag = "urban" }\n')
    assert [group.tags for group in fleet.groups] == [("urban", "ac"), ("urban",)]
    assert fleet.chaos[0].target.tag == "urban"
    assert parse(fleet.text).groups == fleet.groups  # the text for the ledger keeps the tags
    assert parse(GROUP).groups[0].tags == ()
