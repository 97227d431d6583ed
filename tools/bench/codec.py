"""Codec benchmark: one OCPP-J frame decoded, validated and re-encoded, ours against the ``ocpp``
package's, in the same process.

For each sample frame (BootNotification, MeterValues with 10 sampled values, StatusNotification)
both paths turn the same received text into a validated message and back into frame bytes:

- ours: ``decode_frame`` (msgspec tagged union, payload kept raw) → ``decode_request`` (typed
  Struct, every schema constraint checked) → ``encode_payload`` + ``encode_frame``;
- the PyPI ``ocpp`` package, what its ``ChargePoint`` does with one frame it receives
  (``_handle_call``) and one it sends (``call``), minus asyncio: ``ocpp.messages.unpack``
  (``json.loads``) → ``_validate_payload`` (its cached ``Draft4Validator`` over its own schema
  files, ``Decimal`` re-parse for the three schedule actions) → ``camel_to_snake_case`` → the
  action's ``ocpp.v16.call`` dataclass (what a handler receives and what ``call()`` is given) →
  ``serialize_as_dict`` → ``snake_to_camel_case`` → ``remove_nones`` → ``_validate_payload``
  (the package validates what it sends too) → ``Call.to_json`` (``json.dumps``). Validation runs
  inline here; as shipped (``ASYNC_VALIDATION = True``) the package hands each validation to a
  thread executor, which costs it another 200 to 400 µs per frame that this table leaves out;
- ``json + schema``, the narrowest slice of that path: ``unpack`` → ``_validate_payload`` →
  ``to_json``, with no conversion and no validation on the way out. Its ratio is printed too.

Each path is timed with ``time.perf_counter_ns`` over a calibrated loop (about ``--target-ms`` per
round, garbage collector off), best of ``--rounds`` rounds, the rounds of the two paths
alternating; the table gives µs per frame and the ratio ocpp / ours. Runs in well under 30 s
with the defaults.

Usage::

    python tools/bench/codec.py [--rounds 200] [--target-ms 5]
    tools/just bench codec
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Final

import msgspec
from ocpp.charge_point import (  # type: ignore[import-untyped]  # the package's per-frame path
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.messages import (  # type: ignore[import-untyped]
    Call as OcppCall,
)
from ocpp.messages import (
    _validate_payload,
    unpack,
)
from ocpp.v16 import call as ocpp_call  # type: ignore[import-untyped]

from simulator.ocpp.frames import Call, decode_frame, encode_frame
from simulator.ocpp.v16 import decode_request, encode_payload

DEFAULT_ROUNDS: Final = 200
DEFAULT_TARGET_MS: Final = 5.0
"""Wall time of one timed round; the loop count is calibrated to reach it. Many short rounds
rather than a few long ones: on a busy machine a long round is always cut by other processes'
time slices (perf_counter is wall time), while the best of many short ones runs undisturbed."""

_MEASURANDS: Final = [
    ("Energy.Active.Import.Register", "Wh", None, "15234.5"),
    ("Power.Active.Import", "W", None, "11040"),
    ("Current.Import", "A", "L1", "16.1"),
    ("Current.Import", "A", "L2", "15.9"),
    ("Current.Import", "A", "L3", "16.0"),
    ("Voltage", "V", "L1-N", "230.2"),
    ("Voltage", "V", "L2-N", "229.8"),
    ("Voltage", "V", "L3-N", "231.0"),
    ("Temperature", "Celsius", None, "31.5"),
    ("SoC", "Percent", None, "57"),
]


def _sampled(measurand: str, unit: str, phase: str | None, value: str) -> dict[str, str]:
    sample = {
        "value": value,
        "context": "Sample.Periodic",
        "format": "Raw",
        "measurand": measurand,
        "location": "Outlet",
        "unit": unit,
    }
    if phase is not None:
        sample["phase"] = phase
    return sample


FRAMES: Final[dict[str, str]] = {
    "BootNotification": json.dumps(
        [
            2,
            "5f0c7a0e-3b9d-4c57-9a51-0b4a3f0c2d11",
            "BootNotification",
            {
                "chargePointVendor": "Acme",
                "chargePointModel": "AC22",
                "chargePointSerialNumber": "AC22-000123",
                "chargeBoxSerialNumber": "CB-000123",
                "firmwareVersion": "1.4.2",
                "iccid": "8931440400012345678",
                "imsi": "262011234567890",
                "meterType": "Eastron SDM630",
                "meterSerialNumber": "SDM-77881",
            },
        ],
        separators=(",", ":"),
    ),
    "MeterValues (10 values)": json.dumps(
        [
            2,
            "a1d4c3b2-7e6f-4a5b-9c8d-1e2f3a4b5c6d",
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 4711,
                "meterValue": [
                    {
                        "timestamp": "2026-11-26T15:30:00Z",
                        "sampledValue": [_sampled(*m) for m in _MEASURANDS],
                    }
                ],
            },
        ],
        separators=(",", ":"),
    ),
    "StatusNotification": json.dumps(
        [
            2,
            "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a",
            "StatusNotification",
            {
                "connectorId": 2,
                "errorCode": "NoError",
                "status": "Charging",
                "timestamp": "2026-11-26T15:30:01Z",
                "info": "plug locked",
                "vendorId": "Acme",
            },
        ],
        separators=(",", ":"),
    ),
}


def ours(text: str) -> bytes:
    """Our receive-validate-send path for one CALL."""
    frame = decode_frame(text)
    assert isinstance(frame, Call)
    payload = decode_request(frame.action, frame.payload)
    return encode_frame(Call(frame.unique_id, frame.action, msgspec.Raw(encode_payload(payload))))


def theirs(text: str) -> str:
    """The ``ocpp`` package's ``ChargePoint`` path for one CALL received and sent again."""
    received = unpack(text)
    _validate_payload(received, "1.6")
    message = getattr(ocpp_call, received.action)(**camel_to_snake_case(received.payload))
    payload = remove_nones(snake_to_camel_case(serialize_as_dict(message)))
    sent = OcppCall(unique_id=received.unique_id, action=received.action, payload=payload)
    _validate_payload(sent, "1.6")
    encoded: str = sent.to_json()
    return encoded


def json_and_schema(text: str) -> str:
    """The narrowest slice of the package's path: ``json.loads``, one validation, ``json.dumps``."""
    received = unpack(text)
    _validate_payload(received, "1.6")
    encoded: str = received.to_json()
    return encoded


@dataclass(frozen=True, slots=True)
class Timing:
    """Best time per frame over the rounds, in µs, and the loop count of one round."""

    us_per_frame: float
    loops: int


def calibrate(path: Callable[[str], object], text: str, target_ms: float) -> int:
    """The loop count that makes one round of ``path(text)`` last about ``target_ms``."""
    for _ in range(50):  # warm caches (validators, decoders) first
        path(text)
    loops = 1
    while True:
        started = time.perf_counter_ns()
        for _ in range(loops):
            path(text)
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        if elapsed_ms >= target_ms / 4:
            return max(1, int(loops * target_ms / max(elapsed_ms, 1e-3)))
        loops *= 4


def one_round(path: Callable[[str], object], text: str, loops: int) -> float:
    """ns per call of ``path(text)`` over ``loops`` calls."""
    started = time.perf_counter_ns()
    for _ in range(loops):
        path(text)
    return (time.perf_counter_ns() - started) / loops


def time_paths(
    paths: tuple[Callable[[str], object], ...], text: str, rounds: int, target_ms: float
) -> list[Timing]:
    """Best-of-``rounds`` µs per call for each path. Rounds of the paths alternate, so that a
    busy machine slows them alike and the ratio stays fair; the garbage collector is off."""
    loops = [calibrate(path, text, target_ms) for path in paths]
    best = [float("inf")] * len(paths)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for index, path in enumerate(paths):
                best[index] = min(best[index], one_round(path, text, loops[index]))
    finally:
        if gc_was_enabled:
            gc.enable()
    return [Timing(ns / 1000, count) for ns, count in zip(best, loops, strict=True)]


def check_same_meaning(text: str) -> None:
    """Both paths must accept the frame and re-encode the same JSON value."""
    expected = json.loads(text)
    if any(json.loads(path(text)) != expected for path in (ours, theirs, json_and_schema)):
        raise SystemExit(f"the two paths disagree on {text[:60]}...")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed rounds per path")
    parser.add_argument(
        "--target-ms", type=float, default=DEFAULT_TARGET_MS, help="wall time of one round, ms"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.target_ms <= 0:
        parser.error("--rounds must be >= 1 and --target-ms > 0")

    command = shlex.join(["python", "tools/bench/codec.py", *sys.argv[1:]])
    print(f"$ {command}")
    print(
        f"python {platform.python_version()}, msgspec {version('msgspec')}, "
        f"ocpp {version('ocpp')}, jsonschema {version('jsonschema')}; "
        f"best of {args.rounds} rounds of ~{args.target_ms:g} ms, perf_counter_ns, gc off"
    )
    rows = []
    for name, text in FRAMES.items():
        check_same_meaning(text)
        mine, peer, narrow = time_paths(
            (ours, theirs, json_and_schema), text, args.rounds, args.target_ms
        )
        rows.append((name, len(text), mine, peer, narrow))

    header = (
        f"{'frame':<24} {'bytes':>6} {'ours µs':>9} {'ocpp µs':>9} {'ratio':>7}"
        f" {'json+schema µs':>15} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, size, mine, peer, narrow in rows:
        print(
            f"{name:<24} {size:>6} {mine.us_per_frame:>9.2f} {peer.us_per_frame:>9.1f} "
            f"{peer.us_per_frame / mine.us_per_frame:>6.0f}x {narrow.us_per_frame:>15.1f} "
            f"{narrow.us_per_frame / mine.us_per_frame:>6.0f}x"
        )
    print(
        "µs per frame = one CALL received (decoded, validated) and sent (encoded); "
        "ratio = peer / ours\n"
        "ocpp = the package's ChargePoint path (validation both ways, its dataclasses, inline "
        "validation); json+schema = json.loads, one validation, json.dumps"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
