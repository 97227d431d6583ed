"""``[run] epoch`` (where a virtual run's wall clock starts) and ``[csms] transport`` (which
WebSocket client the chargers use)."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from simulator.config import DEFAULT_VIRTUAL_EPOCH, TRANSPORTS, ConfigError, TimeMode
from tests.config.documents import GROUP, parse

VIRTUAL = '[run]\ntime = "virtual"\n'


def test_default_epoch_is_fixed_under_virtual_time_and_absent_under_real_time() -> None:
    assert dt.datetime(2026, 1, 1, tzinfo=dt.UTC) == DEFAULT_VIRTUAL_EPOCH
    virtual = parse(VIRTUAL + GROUP)
    assert virtual.run.time is TimeMode.VIRTUAL
    assert virtual.run.epoch == DEFAULT_VIRTUAL_EPOCH
    assert parse(GROUP).run.epoch is None
    assert "epoch" not in tomllib.loads(virtual.text)["run"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-03-01T12:30:00Z", dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)),
        ("2026-03-01t12:30:00z", dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)),
        ("2026-03-01T12:30:00+00:00", dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)),
        ("1999-12-31 23:59:59.250Z", dt.datetime(1999, 12, 31, 23, 59, 59, 250_000, dt.UTC)),
    ],
)
def test_epoch_is_an_rfc3339_utc_timestamp(written: str, expected: dt.datetime) -> None:
    fleet = parse(VIRTUAL + f'epoch = "{written}"\n' + GROUP)
    assert fleet.run.epoch == expected
    assert fleet.run.epoch is not None and fleet.run.epoch.tzinfo is dt.UTC
    assert parse(fleet.text) == fleet


def test_epoch_from_the_environment_is_the_timestamp_text() -> None:
    env = {"SIM_RUN__TIME": "virtual", "SIM_RUN__EPOCH": "2030-06-01T00:00:00Z"}
    fleet = parse(GROUP, env=env)
    assert fleet.run.epoch == dt.datetime(2030, 6, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'epoch = "2026-01-01"',
            'run.epoch: "2026-01-01" is not an RFC 3339 timestamp; write e.g. '
            '"2026-01-01T00:00:00Z"',
        ),
        (
            'epoch = "2026-13-01T00:00:00Z"',
            'run.epoch: "2026-13-01T00:00:00Z" is not an RFC 3339 timestamp',
        ),
        ('epoch = "yesterday"', 'run.epoch: "yesterday" is not an RFC 3339 timestamp'),
        (
            'epoch = "2026-01-01T02:00:00+02:00"',
            'run.epoch: "2026-01-01T02:00:00+02:00" is not in UTC; write it with Z',
        ),
        (
            "epoch = 2026-01-01T00:00:00Z",
            'run.epoch: must be a quoted RFC 3339 timestamp in UTC such as "2026-01-01T00:00:00Z", '
            "got a date-time 2026-01-01T00:00:00+00:00",
        ),
        ("epoch = 0", "run.epoch: must be a quoted RFC 3339 timestamp in UTC"),
    ],
)
def test_bad_epochs_get_one_clear_line(line: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(VIRTUAL + line + "\n" + GROUP)
    assert str(caught.value).startswith(f"scenarios/x.toml: {expected}"), str(caught.value)


def test_an_epoch_needs_virtual_time() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('[run]\nepoch = "2026-01-01T00:00:00Z"\n' + GROUP)
    assert str(caught.value) == (
        'scenarios/x.toml: run.epoch: applies only to time = "virtual"; '
        'set time = "virtual" or remove the epoch'
    )


def test_transports() -> None:
    assert TRANSPORTS == ("trio-websocket", "websockets")
    assert parse(GROUP).csms.transport == "trio-websocket"
    fleet = parse('[csms]\ntransport = "websockets"\n' + GROUP)
    assert fleet.csms.transport == "websockets"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "wsproto",
            'csms.transport: "wsproto" is no longer available (its client was removed); '
            'use "trio-websocket" (the default) or "websockets"',
        ),
        (
            "websocket",
            'csms.transport: unknown value "websocket"; expected one of trio-websocket, '
            "websockets; did you mean 'websockets'?",
        ),
    ],
)
def test_unavailable_transports_name_the_allowed_ones(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(f'[csms]\ntransport = "{name}"\n' + GROUP)
    assert str(caught.value) == f"scenarios/x.toml: {expected}"
