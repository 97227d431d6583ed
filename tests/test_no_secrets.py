"""No secret reaches the ledger: a fleet whose file holds passwords ([csms] and a group's own
``[group.security]``) runs against a central system that checks them and sets an
``AuthorizationKey`` over OCPP; the whole ledger (every file of it, closed) holds neither the
passwords nor the key, in clear or as the Basic credentials that carry them."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from pathlib import Path

import msgspec
import trio

from simulator.config import parse_fleet
from simulator.csms import CsmsOptions
from simulator.csms.core import CallRefused
from simulator.csms.records import CallOutcome
from simulator.csms.server import CsmsServer, open_csms
from simulator.events import FrameIn
from simulator.machines.charger import ChargerMachine, ChargerSpec
from simulator.machines.effects import Publish
from simulator.ocpp.v16 import ChangeConfigurationRequest, GetConfigurationRequest
from simulator.runtime import open_simulation

PASSWORD = "fleet-password-0123"
GROUP_PASSWORD = "group-password-4567"
KEY = "key-set-over-ocpp-89ab"

FLEET = """
[run]
name = "secrets"
seed = 3
ledger = "{ledger}"

[csms]
url = "{url}"
security_profile = 1
password = "{password}"

[[group]]
name = "fleet-password"
count = 1
id = "A-{{n}}"
vendor = "Acme"
model = "AC22"

[[group]]
name = "own-password"
count = 1
id = "B-{{n}}"
vendor = "Acme"
model = "AC22"

[group.security]
password = "{group_password}"
"""


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (polled: real sockets); ``fail_after`` bounds it."""
    while not condition():  # noqa: ASYNC110 (a condition over the CSMS's state)
        await trio.sleep(0.01)


async def answered(server: CsmsServer, identity: str, request: msgspec.Struct) -> CallOutcome:
    """``request``'s outcome once the charger is connected to answer it (a charger given a new
    key reconnects with it; ``fail_after`` bounds the wait)."""
    while True:
        try:
            outcome = await server.call(identity, request)
        except CallRefused:  # between two connections
            outcome = None
        if outcome is not None and outcome.error_code != "ConnectionLost":
            return outcome
        await trio.sleep(0.05)


async def test_the_ledger_holds_no_password_and_no_authorization_key(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger" / "secrets.db"
    options = CsmsOptions(heartbeat_interval=300,
                          passwords={"A-1": PASSWORD, "B-1": GROUP_PASSWORD})
    with trio.fail_after(30):
        async with open_csms(options) as csms:
            fleet = parse_fleet(FLEET.format(ledger=ledger, url=csms.url, password=PASSWORD,
                                             group_password=GROUP_PASSWORD))
            async with open_simulation(fleet, live=False, grace=1) as sim:
                await until(lambda: set(csms.server.connected()) == {"A-1", "B-1"})
                for identity in ("A-1", "B-1"):
                    for value in (KEY, "short"):  # accepted, then rejected (under 16)
                        outcome = await answered(csms.server, identity, ChangeConfigurationRequest(
                            key="AuthorizationKey", value=value))
                        assert outcome.ok
                    # (the charger reconnected with the new key, which the CSMS learned)
                    outcome = await answered(csms.server, identity, GetConfigurationRequest())
                    assert outcome.ok and KEY not in str(outcome.response)
            assert sim.result is not None and sim.result.exit_code == 0, sim.result
    files = sorted(ledger.parent.iterdir())
    assert ledger in files
    data = b"".join(path.read_bytes() for path in files)
    assert b"ChangeConfiguration" in data and b"AuthorizationKey" in data  # (recorded, redacted)
    for secret in (PASSWORD, GROUP_PASSWORD, KEY):
        assert secret.encode() not in data
        for identity in ("A-1", "B-1"):
            assert base64.b64encode(f"{identity}:{secret}".encode()) not in data


def test_a_refused_change_of_the_key_is_recorded_without_its_value() -> None:
    """A CALL that names the key but cannot be decoded (an extra member, a value too long,
    a cut frame) or names it in another case is refused, yet its value may be the real
    key: the ``frame_in`` and ``configuration_changed`` events never hold it."""
    payloads = [
        f'{{"key":"AuthorizationKey","value":"{KEY}","extra":1}}',
        f'{{"key":"AuthorizationKey","value":"{KEY * 30}"}}',
        f'{{"key":"authorizationKEY","value":"{KEY}"}}',
        f'{{"key":"AuthorizationKey","value":"{KEY}"',
        f'{{"key":"AuthorizationKey","value":"{KEY}"}}',
        f'{{"key":"Authorization\\u004bey","value":"{KEY}","extra":1}}',  # an escaped name
    ]
    for payload in payloads:
        machine = ChargerMachine(ChargerSpec(identity="CP-1", vendor="Acme", model="AC22"),
                                 rng=random.Random(1), new_id=lambda: "id", wall_epoch=0.0,
                                 now=0.0)
        machine.power_on(0.0)
        machine.connected(0.0)
        machine.receive(f'[2,"cs-1","ChangeConfiguration",{payload}]', 1.0)
        events = [e.event for e in machine.take_effects() if isinstance(e, Publish)]
        assert any(isinstance(e, FrameIn) for e in events)
        assert KEY not in repr(events), payload
