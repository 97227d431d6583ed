"""The parameters of every catalog fault: their types, ranges, defaults, and whether the fault
needs a ``for``. Pure data and checks (no trio, no I/O).

This is the contract between the director and the parts that apply faults: the director checks a
``[[chaos]]`` table's ``params`` with :func:`check_params` (``sim check`` does the same), which
fills in every default, so an implementer reads ``injection.params["ms"]`` knowing the key is
there with the right type. A parameter without a default (``action`` of the protocol faults,
``info`` of ``connector_fault``) is absent when not written. Durations are written ``"10s"``,
``"2m"`` or as a number of seconds and arrive as float seconds. Errors are
:class:`~simulator.chaos.catalog.CatalogError`\\ s at ``("params", key)`` or ``("for",)``, worded
to follow ``file: chaos[i].params.key:``.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import msgspec

from simulator.chaos.catalog import CATALOG, CatalogError, Family, family_of, one_of
from simulator.chaos.injection import Scalar
from simulator.durations import DurationError, format_duration, parse_duration
from simulator.ocpp.v16 import ACTIONS, ChargePointErrorCode

__all__ = [
    "FAULT_SPECS",
    "FaultSpec",
    "Kind",
    "Param",
    "check_params",
    "check_values",
    "deliberate",
    "lasting_of",
]


class Kind(enum.StrEnum):
    """The type of a parameter's value, as the fault reads it."""

    INT = "an integer"
    FLOAT = "a number"
    DURATION = 'a duration such as "10s" or a number of seconds'
    STR = "a string"
    BOOL = "true or false"


class Param(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter: its ``kind``; ``low..high`` bounds (numbers and durations, inclusive);
    ``choices`` (the only values allowed, when not empty); ``default`` (``None``: absent when
    not written, or ``required``); ``max_length`` for strings; ``hint`` says what to write
    when a required one is missing."""

    kind: Kind
    default: Scalar | None = None
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[Scalar, ...] = ()
    max_length: int | None = None
    hint: str = ""


class FaultSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A fault's parameters, and its ``for``: ``lasting_required`` (a ``[[chaos]]`` table must
    say how long), else ``lasting_default`` seconds when not written (``None``: it acts once,
    or until the run ends)."""

    params: Mapping[str, Param] = {}
    lasting_required: bool = False
    lasting_default: float | None = None


_DIRECTIONS: Final = ("both", "send", "receive")
_ACTION = Param(kind=Kind.STR, choices=tuple(sorted(ACTIONS)))
_COUNT = Param(kind=Kind.INT, default=1, low=1, high=1000)
_CSMS_ACTIONS: Final = tuple(sorted(a for a, spec in ACTIONS.items()
                                    if spec.direction.central_system_sends))
_ERROR_CODES: Final = tuple(code.value for code in ChargePointErrorCode
                            if code is not ChargePointErrorCode.NO_ERROR)


def _protocol(**params: Param) -> FaultSpec:
    """A protocol fault: its own parameters beside ``count`` and ``action``."""
    return FaultSpec(params={"count": _COUNT, "action": _ACTION, **params})


def _duration(default: float, high: float, low: float = 0.0) -> Param:
    return Param(kind=Kind.DURATION, default=default, low=low, high=high)


FAULT_SPECS: Final[Mapping[str, FaultSpec]] = MappingProxyType({
    # transport
    "latency": FaultSpec(params={
        "ms": Param(kind=Kind.FLOAT, default=200.0, low=0, high=60_000),
        "jitter_ms": Param(kind=Kind.FLOAT, default=0.0, low=0, high=60_000),
        "direction": Param(kind=Kind.STR, default="both", choices=_DIRECTIONS),
    }),
    "bandwidth": FaultSpec(params={
        "bytes_per_second": Param(kind=Kind.INT, default=2000, low=1, high=10**9),
        "direction": Param(kind=Kind.STR, default="both", choices=_DIRECTIONS),
    }),
    "fragment": FaultSpec(params={"size": Param(kind=Kind.INT, default=8, low=1, high=65536)}),
    "disconnect": FaultSpec(params={
        "code": Param(kind=Kind.INT, default=1000, low=1000, high=4999),
    }),
    "reset": FaultSpec(),
    "half_open": FaultSpec(),
    "slow_close": FaultSpec(params={"linger": _duration(10.0, 600.0)}),
    "partition": FaultSpec(lasting_required=True),
    "reconnect_storm": FaultSpec(lasting_default=5.0),
    "identity_clash": FaultSpec(lasting_default=10.0),
    # protocol
    "malformed_json": _protocol(),
    "bad_message_type": _protocol(message_type=Param(kind=Kind.INT, default=7)),
    "duplicate_id": _protocol(),
    "overlong_id": _protocol(length=Param(kind=Kind.INT, default=64, low=37, high=1000)),
    "concurrent_call": _protocol(action_name=Param(kind=Kind.STR, default="Heartbeat")),
    "unknown_action": _protocol(action_name=Param(kind=Kind.STR, default="UnknownAction")),
    "schema_violation": _protocol(kind=Param(kind=Kind.STR, default="missing_field", choices=(
        "missing_field", "wrong_type", "bad_enum", "extra_property", "overlong_string"))),
    "oversize_payload": _protocol(
        bytes=Param(kind=Kind.INT, default=1_048_576, low=1, high=16_777_216)),
    "late_result": _protocol(delay=_duration(30.0, 3600.0)),
    "unsolicited_result": _protocol(),
    "wrong_id_result": _protocol(),
    "error_code_spelling": _protocol(code=Param(kind=Kind.STR, default="FormatViolation")),
    # behaviour
    "clock_skew": FaultSpec(params={
        "mode": Param(kind=Kind.STR, default="offset",
                      choices=("offset", "1970", "no_zone", "future")),
        "seconds": Param(kind=Kind.FLOAT, default=3600.0),
    }),
    "meter_regress": FaultSpec(params={"wh": Param(kind=Kind.FLOAT, default=1000.0,
                                                   low=0, high=1e9)}),
    "meter_spike": FaultSpec(params={"wh": Param(kind=Kind.FLOAT, default=1_000_000.0,
                                                 low=0, high=1e12)}),
    "duplicate_start": FaultSpec(),
    "stale_transaction_id": FaultSpec(),
    "missing_transaction_id": FaultSpec(params={
        "value": Param(kind=Kind.INT, default=-1, choices=(-1, 0)),
    }),
    "connector_fault": FaultSpec(params={
        "error_code": Param(kind=Kind.STR, default="OtherError", choices=_ERROR_CODES),
        "info": Param(kind=Kind.STR, max_length=50),
    }),
    "boot_loop": FaultSpec(params={
        "count": Param(kind=Kind.INT, default=3, low=1, high=100),
        "interval": _duration(10.0, 3600.0, low=1.0),
    }),
    "power_loss": FaultSpec(params={"outage": _duration(10.0, 86_400.0)}),
    "firmware_failure": FaultSpec(params={
        "stage": Param(kind=Kind.STR, default="install", choices=("download", "install")),
    }),
    "slow_responses": FaultSpec(params={"delay": _duration(10.0, 3600.0)}),
    "reject_commands": FaultSpec(params={
        "action": Param(kind=Kind.STR, choices=_CSMS_ACTIONS),
        "mode": Param(kind=Kind.STR, default="rejected", choices=("rejected", "callerror")),
    }),
    # fleet
    "blackout": FaultSpec(params={"power": Param(kind=Kind.BOOL, default=True)},
                          lasting_required=True),
    "wave": FaultSpec(params={
        "fault": Param(kind=Kind.STR, required=True, choices=tuple(sorted(
            CATALOG[Family.TRANSPORT] | CATALOG[Family.BEHAVIOUR])),
            hint='the transport or behaviour fault to roll across the targets, '
                 'e.g. fault = "partition"'),
        "over": _duration(60.0, 7 * 86_400.0),
    }),
})  # fmt: skip
"""The parameter spec of every catalog fault (see the module docstring)."""

_DELIBERATE: Final = frozenset({
    "meter_regress", "meter_spike", "duplicate_start", "stale_transaction_id",
    "missing_transaction_id", "clock_skew",
}) | CATALOG[Family.PROTOCOL]  # fmt: skip
_WAVE_OWN: Final = frozenset({"fault", "over"})


def deliberate(fault: str) -> bool:
    """Whether ``fault`` breaks an invariant of the spec on purpose (a regressing register, a
    duplicate start, every protocol fault): verdicts judge the CSMS's reaction to it, never
    blame it for the breach. A ``wave`` is as deliberate as the fault it rolls out: ask with
    the inner fault's name."""
    return fault in _DELIBERATE


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _bounds(param: Param) -> str:
    def side(limit: float | None) -> str:
        if limit is None:
            return ""
        return format_duration(limit) if param.kind is Kind.DURATION else _show(float(limit))

    return f"{side(param.low)}..{side(param.high)}"


def _value(name: str, param: Param, value: object) -> Scalar:
    """``value`` checked against ``param`` and converted (durations to seconds, numbers to
    float); raises :class:`CatalogError` at ``("params", name)``."""
    path = ("params", name)
    got = f"got {_show(value)}"
    result: Scalar
    match param.kind:
        case Kind.BOOL:
            if not isinstance(value, bool):
                raise CatalogError(path, f"must be {param.kind}, {got}")
            result = value
        case Kind.STR:
            if not isinstance(value, str) or not value:
                raise CatalogError(path, f"must be {param.kind} (not empty), {got}")
            if param.max_length is not None and len(value) > param.max_length:
                raise CatalogError(path, f"must be at most {param.max_length} characters long, "
                                         f"got {len(value)}")
            result = value
        case Kind.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise CatalogError(path, f"must be {param.kind}, {got}")
            result = value
        case Kind.FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise CatalogError(path, f"must be {param.kind}, {got}")
            result = float(value)
        case Kind.DURATION:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise CatalogError(path, f"must be {param.kind}, {got}")
            try:
                result = parse_duration(value)
            except DurationError as error:
                raise CatalogError(path, str(error)) from None
            if not math.isfinite(result):
                raise CatalogError(path, f"must be {param.kind}, {got}")
    if param.choices and result not in param.choices:
        choices = [str(choice) for choice in param.choices]
        raise CatalogError(path, f"unknown value {_show(value)}; {one_of(str(result), choices)}")
    if isinstance(result, int | float) and not isinstance(result, bool) and (
        (param.low is not None and result < param.low)
        or (param.high is not None and result > param.high)
    ):
        shown = format_duration(result) if param.kind is Kind.DURATION else _show(value)
        raise CatalogError(path, f"must be within {_bounds(param)}, got {shown}")
    return result


def check_values(
    specs: Mapping[str, Param], params: Mapping[str, object], owner: str
) -> dict[str, Scalar]:
    """``params`` checked against ``specs`` (``owner`` names whose they are in messages), with
    every default filled in; raises :class:`CatalogError` at ``("params", key)`` for a key
    ``owner`` does not take (naming the ones it takes), a missing required one, a value of the
    wrong type, out of its range or not one of its choices."""
    for name in params:
        if name not in specs:
            if not specs:
                raise CatalogError(("params", name), f"unknown parameter; {owner} takes none")
            known = list(specs)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise CatalogError(("params", name),
                               f"unknown parameter; {hint}{owner} takes {', '.join(known)}")
    checked: dict[str, Scalar] = {}
    for name, param in specs.items():
        if name in params:
            checked[name] = _value(name, param, params[name])
        elif param.required:
            raise CatalogError(("params", name), f"is required: {param.hint or 'add it'}")
        elif param.default is not None:
            checked[name] = param.default
    return checked


def check_params(
    fault: str, params: Mapping[str, object], lasting: float | None = None
) -> dict[str, Scalar]:
    """``fault``'s ``params`` checked and completed with defaults (see :func:`check_values`);
    ``lasting`` is the table's ``for`` in seconds, which some faults need (``partition``,
    ``blackout``: :class:`CatalogError` at ``("for",)`` without it). A ``wave`` checks its own
    ``fault`` and ``over`` and passes every other parameter, and ``for``, to the inner fault's
    check; the result holds both. An unknown fault raises :class:`CatalogError` at
    ``("fault",)``."""
    family_of(fault)
    spec = FAULT_SPECS[fault]
    if fault == "wave":
        own = check_values(spec.params, {k: v for k, v in params.items() if k in _WAVE_OWN},
                           "wave")
        inner = str(own["fault"])
        rest = {k: v for k, v in params.items() if k not in _WAVE_OWN}
        return {**own, **check_params(inner, rest, lasting)}
    if spec.lasting_required and lasting is None:
        raise CatalogError(("for",), f'is required: {fault} needs to know how long it lasts; '
                                     'write e.g. for = "30s"')
    return check_values(spec.params, params, fault)


def lasting_of(fault: str, lasting: float | None,
               params: Mapping[str, Scalar] | None = None) -> float | None:
    """How long one injection of ``fault`` lasts: the table's ``for`` (``lasting``, seconds) if
    written, else how long the fault itself says (``power_loss``: its ``outage``, from
    ``params``), else the fault's default (``reconnect_storm`` 5 s, ``identity_clash`` 10 s),
    else ``None`` (it acts once, or until the run ends)."""
    if lasting is not None:
        return lasting
    if fault == "power_loss" and params is not None and "outage" in params:
        return float(params["outage"])
    return FAULT_SPECS[fault].lasting_default
