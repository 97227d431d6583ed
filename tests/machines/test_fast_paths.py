"""The machines' shortcuts give exactly what the long way round gives.

Each shortcut replaces a general computation on a hot path (a uuid object, a JSON round trip, a
status change that changes nothing); these tests pin it, byte for byte, to the computation it
stands for.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import msgspec
import pytest

from simulator.machines.connector import ConnectorMachine
from simulator.machines.session import _append_transaction_id
from simulator.ocpp.v16 import ChargePointErrorCode, ChargePointStatus
from simulator.seeds import uuid_ids

_S = ChargePointStatus
_E = ChargePointErrorCode


class _FixedBits:
    """An Rng whose every draw of bits is ``value``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def getrandbits(self, k: int, /) -> int:
        return self.value


def test_uuid_ids_are_the_uuid_modules_uuid4_strings() -> None:
    ours, theirs = random.Random(3), random.Random(3)
    new_id = uuid_ids(ours)
    for _ in range(20_000):
        assert new_id() == str(uuid.UUID(int=theirs.getrandbits(128), version=4))


@pytest.mark.parametrize("bits", [0, (1 << 128) - 1, 1 << 127, 0xC000 << 48, 0xF000 << 64])
def test_uuid_ids_set_the_variant_and_version_bits(bits: int) -> None:
    new_id = uuid_ids(_FixedBits(bits))  # type: ignore[arg-type]
    assert new_id() == str(uuid.UUID(int=bits, version=4))


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"connectorId": 1},
        {"connectorId": 2, "meterValue": [{"timestamp": "2026-01-01T00:00:01Z",
                                           "sampledValue": [{"value": "1.5", "unit": "Wh"}]}]},
        {"meterStop": 10, "timestamp": "2026-01-01T00:00:01.250Z", "idTag": 'a"b\\c é',
         "reason": "Local"},
    ],
)
@pytest.mark.parametrize("tx_id", [0, 7, -3, 2**62])
def test_appending_the_transaction_id_is_the_json_round_trip(
    payload: dict[str, Any], tx_id: int
) -> None:
    text = msgspec.json.encode(payload).decode()
    decoded = msgspec.json.decode(text)
    decoded["transactionId"] = tx_id
    assert _append_transaction_id(text, tx_id) == msgspec.json.encode(decoded)


def test_shows_is_true_exactly_when_set_status_would_change_nothing() -> None:
    rng = random.Random(11)
    infos = [None, "hot", "cold"]
    vendors = [None, "V1"]
    for _ in range(2_000):
        machine = ConnectorMachine(1, now=0.0)
        machine.set_status(rng.choice([_S.AVAILABLE, _S.PREPARING]), 1.0,
                           error_code=rng.choice([_E.NO_ERROR, _E.HIGH_TEMPERATURE]),
                           info=rng.choice(infos), vendor_error_code=rng.choice(vendors))
        status = rng.choice([machine.status, _S.PREPARING, _S.AVAILABLE])
        code = rng.choice([machine.error_code, _E.NO_ERROR, _E.HIGH_TEMPERATURE])
        info, vendor = rng.choice(infos), rng.choice(vendors)
        shows = machine.shows(status, code, info, vendor)
        changed = machine.set_status(status, 2.0, error_code=code, info=info,
                                     vendor_error_code=vendor)
        assert shows is not changed
