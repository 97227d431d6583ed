"""The fault catalog as the dashboard's fault form reads it (``GET /api/chaos/catalog``).

Every fault of :mod:`simulator.chaos.catalog`, with its family, one line saying what it does,
what it acts on (``target``: a ``charger``, one ``connector`` of it, or many chargers at once,
``fleet``), how long it lasts (``lasting``: ``required`` in a ``for``, a default in seconds, or
``optional``: without a ``for`` it acts once, or until the run ends) and each parameter of
:data:`simulator.chaos.params.FAULT_SPECS`: its name, kind, default, a description (its range
and what it does) and its choices. The names, kinds, ranges and defaults come from the chaos
package itself; only the sentences are written here. Pure data, built once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from simulator.chaos.catalog import FAULTS, family_of
from simulator.chaos.injection import Scalar
from simulator.chaos.params import FAULT_SPECS, Kind, Param
from simulator.durations import format_duration

__all__ = ["CATALOG_ROWS", "CatalogParam", "CatalogRow", "catalog_rows"]

FAULT_TEXT: Final[Mapping[str, str]] = {
    "latency": "Delays every frame on the link by ms (± jitter_ms).",
    "bandwidth": "Limits the link to bytes_per_second.",
    "fragment": "Cuts every write into pieces of size bytes.",
    "disconnect": "Closes the WebSocket cleanly with code; the charger reconnects.",
    "reset": "Aborts the connection (no close frame, an RST over TCP); the charger reconnects.",
    "half_open": "The connection reads and writes nothing (no pong) until the fault ends, then "
                 "is reset.",
    "slow_close": "A clean close whose connection is ended only linger seconds later.",
    "partition": "Closes the connection and keeps the charger offline for the fault's for.",
    "reconnect_storm": "Closes the connection; every charger hit comes back at the same instant.",
    "identity_clash": "Opens a second connection with the same identity and keeps it open.",
    "malformed_json": "Sends count frames that are not valid JSON.",
    "bad_message_type": "Sends count frames with an unknown message type.",
    "duplicate_id": "Reuses a message id still in flight, count times.",
    "overlong_id": "Sends count frames whose message id is longer than 36 characters.",
    "concurrent_call": "Sends a second CALL while one is awaiting its result, count times.",
    "unknown_action": "Sends count CALLs of an action OCPP 1.6 does not define.",
    "schema_violation": "Sends count payloads that break the action's JSON schema.",
    "oversize_payload": "Pads count payloads to bytes.",
    "late_result": "Answers count CALLs of the central system delay seconds late.",
    "unsolicited_result": "Sends count results no CALL asked for.",
    "wrong_id_result": "Answers count CALLs with another message id.",
    "error_code_spelling": "Answers count CALLs with a CALLERROR whose code is misspelt.",
    "clock_skew": "The charger's clock goes wrong (an offset, 1970, no time zone, the future).",
    "meter_regress": "The energy register goes back by wh.",
    "meter_spike": "The energy register jumps up by wh.",
    "duplicate_start": "A StartTransaction is sent twice for one session.",
    "stale_transaction_id": "A finished transaction's id is used again.",
    "missing_transaction_id": "Transaction messages carry value as their transactionId.",
    "connector_fault": "The connector reports error_code (Faulted) until the fault ends.",
    "boot_loop": "The charger reboots count times, interval seconds after each power-on.",
    "power_loss": "The charger loses power for outage seconds, then boots again.",
    "firmware_failure": "The next firmware update fails at stage.",
    "slow_responses": "The charger answers the central system's CALLs delay seconds late.",
    "reject_commands": "The charger refuses the central system's CALLs (those of action).",
    "blackout": "Every target loses power (power = false: its link) and comes back at the same "
                "instant.",
    "wave": "Rolls the inner fault across the targets one by one, spread over over seconds.",
}
"""What each fault does, in one line."""

PARAM_TEXT: Final[Mapping[str, str]] = {
    "ms": "Delay in milliseconds.",
    "jitter_ms": "Random spread of the delay (±, milliseconds, seeded).",
    "direction": "Which way it acts: both, send (charger to central system) or receive.",
    "bytes_per_second": "Throughput allowed.",
    "size": "Bytes per piece.",
    "code": "The close code, or the error code written (the protocol faults).",
    "linger": "How long the closed connection lingers.",
    "count": "How many frames are broken.",
    "action": "Only frames (or CALLs) of this OCPP action; absent: any.",
    "message_type": "The message type written.",
    "length": "Length of the message id.",
    "action_name": "The action name written.",
    "kind": "How the payload breaks the schema.",
    "bytes": "Size of the padded payload.",
    "delay": "How late.",
    "mode": "How it goes wrong.",
    "seconds": "The clock's offset in seconds (mode offset).",
    "wh": "Energy in Wh.",
    "value": "The transactionId written.",
    "error_code": "The StatusNotification error code reported.",
    "info": "The StatusNotification info text (at most 50 characters).",
    "interval": "Seconds between a power-on and the next reboot.",
    "outage": "How long the power is off.",
    "stage": "Where the firmware update fails.",
    "power": "Whether the power goes (true) or only the link (false: a partition).",
    "fault": "The transport or behaviour fault to roll across the targets.",
    "over": "How long the wave takes to reach every target.",
}
"""What each parameter means (the names mean the same in every fault that takes them)."""

_CONNECTOR_FAULTS: Final = frozenset({
    "connector_fault", "meter_regress", "meter_spike", "duplicate_start",
    "stale_transaction_id", "missing_transaction_id",
})


class CatalogParam(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One parameter of a fault as the form shows it (``choices`` only when closed)."""

    name: str
    kind: str
    default: Scalar | None
    description: str
    required: bool = False
    choices: list[Scalar] | None = None


class CatalogRow(msgspec.Struct, frozen=True, kw_only=True):
    """One fault of the catalog as the form shows it (see the module docstring)."""

    fault: str
    family: str
    description: str
    target: str
    lasting: str | float
    params: list[CatalogParam]


def _kind(param: Param) -> str:
    return {Kind.INT: "int", Kind.FLOAT: "float", Kind.DURATION: "duration", Kind.STR: "str",
            Kind.BOOL: "bool"}[param.kind]


def _range(param: Param) -> str:
    if param.low is None and param.high is None:
        return ""

    def side(limit: float | None) -> str:
        if limit is None:
            return ""
        if param.kind is Kind.DURATION:
            return format_duration(limit)
        return str(int(limit)) if float(limit).is_integer() else str(limit)

    return f" ({side(param.low)}..{side(param.high)})"


def _param(name: str, param: Param) -> CatalogParam:
    text = PARAM_TEXT.get(name, "")
    if param.hint:
        text = f"{text} Required: {param.hint}." if text else param.hint
    return CatalogParam(
        name=name, kind=_kind(param), default=param.default,
        description=f"{text}{_range(param)}", required=param.required,
        choices=list(param.choices) if param.choices else None,
    )


def _target(fault: str) -> str:
    if family_of(fault).value == "fleet":
        return "fleet"
    return "connector" if fault in _CONNECTOR_FAULTS else "charger"


def catalog_rows() -> list[CatalogRow]:
    """Every catalog fault, by family then name (see the module docstring)."""
    rows = []
    for fault in sorted(FAULTS, key=lambda name: (family_of(name).value, name)):
        spec = FAULT_SPECS[fault]
        lasting: str | float = ("required" if spec.lasting_required
                                else spec.lasting_default if spec.lasting_default is not None
                                else "optional")
        rows.append(CatalogRow(
            fault=fault, family=family_of(fault).value, description=FAULT_TEXT[fault],
            target=_target(fault), lasting=lasting,
            params=[_param(name, param) for name, param in spec.params.items()],
        ))
    return rows


CATALOG_ROWS: Final = catalog_rows()
"""The catalog, built once (it never changes while the simulator runs)."""
