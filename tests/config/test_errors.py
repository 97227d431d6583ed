"""The fleet file's errors: one line naming the file and the field, and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.config import ConfigError, load_fleet
from tests.config.documents import GROUP, parse

# --- errors: one line, file and field, what to do -------------------------------------------------

ERRORS: list[tuple[str, str, str]] = [
    # (case, text, expected error line)
    (
        "out of range",
        GROUP.replace("count = 3", "count = -3"),
        "scenarios/x.toml: group[0].count: must be >= 1, got -3",
    ),
    (
        "unknown key",
        GROUP.replace("count = 3", "conut = 3"),
        "scenarios/x.toml: group[0].conut: unknown key; did you mean 'count'?",
    ),
    (
        "unknown section",
        "[runn]\nseed = 1\n" + GROUP,
        "scenarios/x.toml: runn: unknown key; did you mean 'run'?",
    ),
    (
        "unknown key in run",
        "[run]\nsed = 1\n" + GROUP,
        "scenarios/x.toml: run.sed: unknown key; did you mean 'seed'?",
    ),
    (
        "unknown key in target",
        GROUP + '[[step]]\nat = 1\ndo = "plug"\ntarget = { idz = ["AC-0001"] }\n',
        "scenarios/x.toml: step[0].target.idz: unknown key; did you mean 'ids'?",
    ),
    (
        "wrong type",
        GROUP.replace("count = 3", 'count = "3"'),
        'scenarios/x.toml: group[0].count: must be an integer, got a string "3"',
    ),
    (
        "wrong type bool",
        "[run]\nseed = true\n" + GROUP,
        "scenarios/x.toml: run.seed: must be an integer, got true",
    ),
    (
        "too long",
        GROUP.replace('"Acme"', '"A Very Long Vendor Name"'),
        "scenarios/x.toml: group[0].vendor: must be at most 20 characters long, got 23",
    ),
    (
        "bad duration",
        '[run]\nduration = "5x"\n' + GROUP,
        'scenarios/x.toml: run.duration: "5x" is not a duration',
    ),
    (
        "zero duration",
        '[run]\nduration = "0s"\n' + GROUP,
        "scenarios/x.toml: run.duration: must be longer than 0s",
    ),
    (
        "bad range",
        GROUP + '[group.sessions]\narrivals_per_hour = 1\nduration = "2h..20m"\nid_tags = ["A"]\n',
        'scenarios/x.toml: group[0].sessions.duration: "2h..20m" has low 2h above high 20m',
    ),
    (
        "bad number range",
        GROUP + '[group.sessions]\narrivals_per_hour = 1\nenergy_kwh = "5..x"\nid_tags = ["A"]\n',
        'scenarios/x.toml: group[0].sessions.energy_kwh: "5..x" is not a range',
    ),
    (
        "empty id_tags",
        GROUP + "[group.sessions]\narrivals_per_hour = 1\nid_tags = []\n",
        "scenarios/x.toml: group[0].sessions.id_tags: must list at least 1 item",
    ),
    (
        "id tag too long",
        GROUP + '[group.sessions]\narrivals_per_hour = 1\nid_tags = ["A", "' + "T" * 21 + '"]\n',
        'scenarios/x.toml: group[0].sessions.id_tags[1]: "' + "T" * 21 + '" gives "'
        + "T" * 21 + '" for charger "AC-0001": longer than 20 characters (OCPP idTag)',
    ),
    (
        "id tag too long once filled in",
        GROUP + '[group.sessions]\narrivals_per_hour = 1\n'
        'id_tags = ["DRIVERS-NUM-{charger}-{connector}"]\n',
        'scenarios/x.toml: group[0].sessions.id_tags[0]: "DRIVERS-NUM-{charger}-{connector}" '
        'gives "DRIVERS-NUM-AC-0001-2" for charger "AC-0001": longer than 20 characters (OCPP '
        "idTag)",
    ),
    (
        "negative arrivals",
        GROUP + '[group.sessions]\narrivals_per_hour = -1\nid_tags = ["A"]\n',
        "scenarios/x.toml: group[0].sessions.arrivals_per_hour: must be >= 0, got -1",
    ),
    (
        "bad url scheme",
        '[csms]\nurl = "http://example.com/ocpp"\n' + GROUP,
        'scenarios/x.toml: csms.url: "http://example.com/ocpp" must be "embedded" or start with '
        "ws:// or wss://",
    ),
    (
        "bad url port",
        '[csms]\nurl = "ws://example.com:99999/ocpp"\n' + GROUP,
        'scenarios/x.toml: csms.url: "ws://example.com:99999/ocpp" is not a valid URL',
    ),
    (
        "url without host",
        '[csms]\nurl = "ws:///ocpp"\n' + GROUP,
        'scenarios/x.toml: csms.url: "ws:///ocpp" has no host',
    ),
    (
        "duplicate ids",
        GROUP + GROUP.replace('"ac"', '"ac2"'),
        'scenarios/x.toml: group[1].id: charger id "AC-0001" is also made by group[0].id',
    ),
    (
        "duplicate group names",
        GROUP + GROUP.replace("AC-", "DC-"),
        'scenarios/x.toml: group[1].name: "ac" is already the name of group[0]',
    ),
    (
        "constant template",
        GROUP.replace("AC-{n:04}", "AC"),
        'scenarios/x.toml: group[0].id: "AC" gives the same id "AC" to every charger; put {n}',
    ),
    (
        "unknown placeholder",
        GROUP.replace("AC-{n:04}", "AC-{x}"),
        'scenarios/x.toml: group[0].id: cannot fill in "AC-{x}": unknown placeholder {x}',
    ),
    (
        "bad format spec",
        GROUP.replace("AC-{n:04}", "AC-{n:q}"),
        'scenarios/x.toml: group[0].id: cannot fill in "AC-{n:q}"',
    ),
    (
        "id not url safe",
        GROUP.replace("AC-{n:04}", "AC {n}"),
        'scenarios/x.toml: group[0].id: charger id "AC 1" must be 1-48 letters',
    ),
    (
        "unknown fault",
        GROUP + '[[chaos]]\nfault = "disconect"\n',
        'scenarios/x.toml: chaos[0].fault: unknown fault "disconect"; expected one of',
    ),
    (
        "unknown action",
        GROUP + '[[step]]\nat = "1s"\ndo = "plugin"\n',
        'scenarios/x.toml: step[0].do: unknown value "plugin"; expected one of plug, unplug',
    ),
    (
        "missing step time",
        GROUP + '[[step]]\ndo = "plug"\n',
        "scenarios/x.toml: step[0].at: is required; add it",
    ),
    (
        "unknown charger in target",
        GROUP + '[[step]]\nat = 1\ndo = "plug"\ntarget = { ids = ["AC-0009"] }\n',
        'scenarios/x.toml: step[0].target.ids[0]: no charger "AC-0009" in the fleet',
    ),
    (
        "unknown group in target",
        GROUP + '[[chaos]]\nfault = "reset"\ntarget = { group = "acc" }\n',
        'scenarios/x.toml: chaos[0].target.group: no group named "acc"',
    ),
    (
        "ids and group",
        GROUP + '[[chaos]]\nfault = "reset"\ntarget = { group = "ac", ids = ["AC-0001"] }\n',
        "scenarios/x.toml: chaos[0].target: give ids or group, not both",
    ),
    (
        "connector out of range",
        GROUP + '[[step]]\nat = 1\ndo = "plug"\ntarget = { connector = 3 }\n',
        "scenarios/x.toml: step[0].target.connector: connector 3 does not exist",
    ),
    (
        "fraction out of range",
        GROUP + '[[chaos]]\nfault = "reset"\ntarget = { fraction = 1.5 }\n',
        "scenarios/x.toml: chaos[0].target.fraction: must be <= 1, got 1.5",
    ),
    (
        "probability out of range",
        GROUP + '[[chaos]]\nfault = "reset"\nprobability = -0.1\n',
        "scenarios/x.toml: chaos[0].probability: must be >= 0, got -0.1",
    ),
    (
        "bad for",
        GROUP + '[[chaos]]\nfault = "partition"\nfor = "ever"\n',
        'scenarios/x.toml: chaos[0].for: "ever" is not a duration',
    ),
    (
        "zero every",
        GROUP + '[[chaos]]\nfault = "partition"\nevery = 0\n',
        "scenarios/x.toml: chaos[0].every: must be longer than 0s",
    ),
    (
        "present_tag without tag",
        GROUP + '[[step]]\nat = 1\ndo = "present_tag"\n',
        "scenarios/x.toml: step[0].params.id_tag: present_tag needs params.id_tag",
    ),
    (
        "nested config value",
        GROUP + "[group.config]\nFoo = [1]\n",
        "scenarios/x.toml: group[0].config.Foo: must be a string, a number or true/false, "
        "got a list",
    ),
    (
        "config sub-table",
        GROUP + "[group.config.Foo]\nx = 1\n",
        "scenarios/x.toml: group[0].config.Foo: must be a string, a number or true/false, "
        "got a table",
    ),
    (
        "single group table",
        GROUP.replace("[[group]]", "[group]"),
        "scenarios/x.toml: group: must be written [[group]] (a list of tables), not [group]",
    ),
    (
        "no group",
        "[run]\nseed = 1\n",
        "scenarios/x.toml: group: is required; add at least one [[group]] table",
    ),
    (
        "expect without check",
        GROUP + '[[expect]]\np95 = "2s"\n',
        "scenarios/x.toml: expect[0].check: is required",
    ),
    (
        "bad time mode",
        '[run]\ntime = "virtul"\n' + GROUP,
        'scenarios/x.toml: run.time: unknown value "virtul"; expected one of real, virtual; '
        "did you mean 'virtual'?",
    ),
    (
        "bad ledger template",
        '[run]\nledger = "runs/{nme}.db"\n' + GROUP,
        'scenarios/x.toml: run.ledger: cannot fill in "runs/{nme}.db": unknown placeholder {nme}',
    ),
    (
        "bad run name",
        '[run]\nname = "../etc"\n' + GROUP,
        'scenarios/x.toml: run.name: "../etc" must be letters, digits',
    ),
    (
        "profile out of range",
        "[csms]\nsecurity_profile = 5\n" + GROUP,
        "scenarios/x.toml: csms.security_profile: must be <= 3, got 5",
    ),
    (
        "basic auth without password",
        '[csms]\nurl = "ws://h/ocpp"\nsecurity_profile = 1\n' + GROUP,
        "scenarios/x.toml: csms.password: security_profile 1 needs a password",
    ),
    (
        "tls profile without wss",
        '[csms]\nurl = "ws://h/ocpp"\nsecurity_profile = 2\npassword = "p"\n' + GROUP,
        "scenarios/x.toml: csms.url: security_profile 2 needs TLS: use a wss:// URL",
    ),
    (
        "mutual tls without cert",
        '[csms]\nurl = "wss://h/ocpp"\nsecurity_profile = 3\n' + GROUP,
        "scenarios/x.toml: csms.cert_file: security_profile 3 (mutual TLS) needs cert_file",
    ),
    (
        "bad boot status",
        '[csms.embedded]\nboot_status = "Acepted"\n' + GROUP,
        'scenarios/x.toml: csms.embedded.boot_status: unknown value "Acepted"',
    ),
    (
        "missing env variable",
        '[csms]\npassword = "${NOT_SET_ANYWHERE}"\n' + GROUP,
        "scenarios/x.toml: csms.password: environment variable NOT_SET_ANYWHERE is not set; "
        "set it, or write ${NOT_SET_ANYWHERE:-default}",
    ),
    (
        "toml date where int expected",
        "[run]\nseed = 1979-05-27\n" + GROUP,
        "scenarios/x.toml: run.seed: must be an integer, got a date 1979-05-27",
    ),
    (
        "ocpp key out of range",
        GROUP + "[group.config]\nHeartbeatInterval = 99999999999\n",
        "scenarios/x.toml: group[0].config.HeartbeatInterval: cannot be '99999999999': above "
        "604800",
    ),
    (
        "unknown ocpp key",
        GROUP + "[group.config]\nHeartbeatIntervall = 5\n",
        "scenarios/x.toml: group[0].config.HeartbeatIntervall: unknown OCPP configuration key; "
        "did you mean 'HeartbeatInterval'?",
    ),
    (
        "ocpp key of the wrong type",
        GROUP + "[group.config]\nStopTransactionOnInvalidId = 3\n",
        "scenarios/x.toml: group[0].config.StopTransactionOnInvalidId: cannot be '3': expected "
        "true or false",
    ),
    (
        "broken toml",
        "[run\nseed = 1\n" + GROUP,
        "scenarios/x.toml: line 1, column 5: invalid TOML: Expected ']' at the end of a table "
        "declaration; fix the syntax",
    ),
    (
        "broken toml value",
        "[run]\nseed = = 1\n" + GROUP,
        "scenarios/x.toml: line 2, column 8: invalid TOML: Invalid value; fix the syntax",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_are_one_line_naming_file_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(expected), line
    assert caught.value.source == "scenarios/x.toml"


def test_error_fields_are_exposed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GROUP.replace("count = 3", "count = 0"))
    assert caught.value.field == "group[0].count"
    assert caught.value.message == "must be >= 1, got 0"


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_fleet(missing)
    assert str(caught.value) == (
        f"{missing}: cannot read the file: No such file or directory; check the path"
    )
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_fleet(tmp_path)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(GROUP.replace("Acme", "Acm\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text \(byte \d+\)"):
        load_fleet(path)


def test_broken_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[group]\n")
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    assert str(caught.value).startswith(f"{path}: line 1, column 8: invalid TOML")


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        (
            {"SIM_RUN__SEED": "x"},
            None,
            'scenarios/x.toml: run.seed: must be an integer, got a string "x" '
            "(set by SIM_RUN__SEED)",
        ),
        (
            {"SIM_GROUP__0__COUNT": "0"},
            None,
            "scenarios/x.toml: group[0].count: must be >= 1, got 0 (set by SIM_GROUP__0__COUNT)",
        ),
        (
            {"SIM_RUNN__SEED": "1"},
            None,
            "scenarios/x.toml: runn: unknown section; did you mean 'run'? (set by SIM_RUNN__SEED)",
        ),
        (
            {"SIM_GROUP__3__COUNT": "1"},
            None,
            "scenarios/x.toml: group: has no entry '3' (the file has 1); use an index from 0 or a "
            "group name (set by SIM_GROUP__3__COUNT)",
        ),
        (
            {"SIM_CSMS__URL": "http://x"},
            None,
            'scenarios/x.toml: csms.url: "http://x" must be "embedded"',
        ),
        (
            {},
            {"run.duration": "soon"},
            'scenarios/x.toml: run.duration: "soon" is not a duration',
        ),
        (
            {},
            {"run.seed": "3"},
            'scenarios/x.toml: run.seed: must be an integer, got a string "3" '
            "(set by override 'run.seed')",
        ),
        (
            {},
            {"run..seed": 3},
            "scenarios/x.toml: override 'run..seed' is not a dotted path",
        ),
        (
            {},
            {"step[0].at": 1},
            "scenarios/x.toml: step: has no entry 0 (the file has 0)",
        ),
    ],
)
def test_override_errors(
    env: dict[str, str], overrides: dict[str, object] | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(GROUP, env=env, overrides=overrides)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(expected), str(caught.value)
