"""The fleet file as written: one msgspec Struct per TOML table, also the JSON schema (``sim
schema``).

These declare structure, types and simple bounds only (``count >= 1``, ``vendor`` at most 20
characters); meaning (durations, ranges, templates, URLs, names from a closed set) is checked when
the document is resolved (:mod:`simulator.config.resolve`). Names from a closed set are plain
strings with an ``enum`` in the schema, so the resolver can word the error and suggest a fix.
A ``Meta(extra={"expected": ...})`` gives the wording of a field's type in structure errors
(:mod:`simulator.config.structure`).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from simulator.chaos import FAULTS
from simulator.config.model import (
    BOOT_STATUSES,
    EMBEDDED,
    TRANSPORTS,
    Scalar,
    StepAction,
    TimeMode,
)

_NUMBER_PATTERN: Final = r"(\d+(\.\d*)?|\.\d+)"
# The JSON schema's view of simulator.durations.parse_duration, for editors.
_DURATION_PATTERN: Final = rf"^\s*({_NUMBER_PATTERN}\s*|({_NUMBER_PATTERN}\s*(ms|d|h|m|s)\s*)+)$"
# The JSON schema's view of an RFC 3339 timestamp in UTC (the loader checks the calendar).
_UTC_TIMESTAMP_PATTERN: Final = (
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]00:00)$"
)

DurationText = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": _DURATION_PATTERN})]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Duration = Annotated[
    DurationText | Seconds,
    msgspec.Meta(
        description='Seconds, or "500ms", "30s", "2m", "1h30m"',
        extra={"expected": 'a duration such as "30s" or a number of seconds'},
    ),
]
DurationRange = Annotated[
    str | float,
    msgspec.Meta(
        description='A duration or a range of durations, e.g. "20m..2h"',
        extra={"expected": 'a duration such as "30s" or a range such as "20m..2h"'},
    ),
]
NumberRange = Annotated[
    str | float,
    msgspec.Meta(
        description='A number or a range of numbers, e.g. "5..40"',
        extra={"expected": 'a number or a range such as "5..40"'},
    ),
]
UtcTimestamp = Annotated[
    str,
    msgspec.Meta(
        description='An RFC 3339 timestamp in UTC, e.g. "2026-01-01T00:00:00Z"',
        extra_json_schema={"pattern": _UTC_TIMESTAMP_PATTERN},
        extra={"expected": 'a quoted RFC 3339 timestamp in UTC such as "2026-01-01T00:00:00Z"'},
    ),
]
CiString20 = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
TagTemplate = Annotated[str, msgspec.Meta(
    min_length=1, max_length=100,
    description="An idTag, or a template with {charger} and {connector}: at most 20 characters "
                "once filled in",
)]
ScalarTable = dict[str, Scalar]

TimeName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": [m.value for m in TimeMode]})]
BootStatusName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(BOOT_STATUSES)})]
TransportName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(TRANSPORTS)})]
StepActionName = Annotated[
    str, msgspec.Meta(extra_json_schema={"enum": [a.value for a in StepAction]})
]
FaultName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": sorted(FAULTS)})]


class Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the file tables: unknown keys are errors."""


class RunTable(Table, frozen=True, kw_only=True):
    """[run]: name, seed, duration, ledger path, time mode and virtual-time epoch of the run, and
    whether verdicts judge the CSMS's frames by the official schemas (``validate_csms``)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    seed: int = 0
    duration: Duration | None = None
    ledger: str = "runs/{name}.db"
    time: TimeName = TimeMode.REAL.value
    epoch: UtcTimestamp | None = None
    validate_csms: Annotated[bool, msgspec.Meta(
        description="Judge every frame the CSMS sent by the official 1.6 JSON schemas too "
                    "(the schema_clean check; slow)")] = False


class EmbeddedTable(Table, frozen=True, kw_only=True):
    """[csms.embedded]: how the built-in reference CSMS answers (only with url = "embedded")."""

    boot_status: BootStatusName = "Accepted"
    heartbeat_interval: Duration = 60.0
    accepted_tags: tuple[str, ...] = ("*",)
    blocked_tags: tuple[str, ...] = ("BLOCKED*",)
    poll_interval: Annotated[
        Duration | None,
        msgspec.Meta(description="The CSMS calls every charger this often "
                                 "(GetConfiguration, TriggerMessage in turn); absent: never"),
    ] = None


class CsmsTable(Table, frozen=True, kw_only=True):
    """[csms]: the central system the chargers connect to."""

    url: str = EMBEDDED
    security_profile: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    transport: TransportName = TRANSPORTS[0]
    embedded: EmbeddedTable = msgspec.field(default_factory=EmbeddedTable)


class SessionsTable(Table, frozen=True, kw_only=True):
    """[group.sessions]: automatic transactions, Poisson arrivals per connector."""

    arrivals_per_hour: Annotated[float, msgspec.Meta(ge=0)]
    duration: DurationRange = "20m..2h"
    energy_kwh: NumberRange = "5..40"
    id_tags: Annotated[tuple[TagTemplate, ...], msgspec.Meta(min_length=1)]


class FirmwareTable(Table, frozen=True, kw_only=True):
    """[group.firmware]: how long each step of a firmware update or an upload takes, and the
    probability that it fails."""

    download: Duration = "10s"
    install: Duration = "10s"
    upload: Duration = "5s"
    download_failure: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    install_failure: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    upload_failure: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0


class SecurityTable(Table, frozen=True, kw_only=True):
    """[group.security]: the group's own security settings, each replacing [csms]'s."""

    security_profile: Annotated[int, msgspec.Meta(ge=0, le=3)] | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class GroupTable(Table, frozen=True, kw_only=True):
    """[[group]]: ``count`` identical chargers whose ids come from the ``id`` template."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    id: Annotated[str, msgspec.Meta(min_length=1, description='Template, e.g. "AC-{n:04}"')]
    vendor: CiString20
    model: CiString20
    firmware_version: Annotated[str, msgspec.Meta(max_length=50)] | None = None
    serial: Annotated[str, msgspec.Meta(description='Template, e.g. "SN-{n:06}"')] | None = None
    connectors: Annotated[int, msgspec.Meta(ge=1)] = 1
    max_power_kw: Annotated[float, msgspec.Meta(gt=0)] = 22.0
    connect_rate: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    config: ScalarTable = {}
    sessions: SessionsTable | None = None
    profiles: Annotated[
        tuple[str, ...],
        msgspec.Meta(description="The feature profiles the chargers implement (default: all)"),
    ] | None = None
    real_transfers: bool = False
    firmware: FirmwareTable = msgspec.field(default_factory=FirmwareTable)
    security: SecurityTable | None = None
    tags: Annotated[
        tuple[Annotated[str, msgspec.Meta(min_length=1)], ...],
        msgspec.Meta(description='Labels a target can pick the group by: target = { tag = "x" }'),
    ] | None = None


class TargetTable(Table, frozen=True, kw_only=True):
    """Who a step or fault applies to: ``ids``, ``group`` or the groups with ``tag`` (or the
    whole fleet), a seeded ``fraction`` of those, and optionally one ``connector``."""

    ids: tuple[str, ...] | None = None
    group: str | None = None
    tag: str | None = None
    fraction: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    connector: Annotated[int, msgspec.Meta(ge=0)] | None = None


class StepTable(Table, frozen=True, kw_only=True):
    """[[step]]: a scripted domain action at a time."""

    at: Duration
    do: StepActionName
    target: TargetTable = msgspec.field(default_factory=TargetTable)
    params: ScalarTable = {}


class ChaosTable(Table, frozen=True, kw_only=True):
    """[[chaos]]: a fault from the catalog, its target, schedule and parameters."""

    fault: FaultName
    target: TargetTable = msgspec.field(default_factory=TargetTable)
    at: Duration = 0.0
    every: Duration | None = None
    probability: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    for_: Duration | None = msgspec.field(default=None, name="for")
    params: ScalarTable = {}


ExpectTable = Annotated[
    dict[str, Scalar],
    msgspec.Meta(
        description="[[expect]]: a verdict check and its parameters",
        extra_json_schema={"required": ["check"], "properties": {"check": {"type": "string"}}},
    ),
]


class ApiTable(Table, frozen=True, kw_only=True):
    """[api]: the control API and dashboard of a running fleet (``sim start --api``)."""

    listen: Annotated[str, msgspec.Meta(
        description="[HOST:]PORT the API listens on (default host 127.0.0.1; port 0: any free "
                    "port); an address other than loopback needs a token")] = "127.0.0.1:8765"
    token: Annotated[str | None, msgspec.Meta(
        description='Bearer token every request must carry; write token = "${SIM_API_TOKEN}" '
                    "(never recorded)")] = None
    cors: Annotated[tuple[str, ...], msgspec.Meta(
        description="Origins allowed to call the API from a browser (none: CORS off)")] = ()


class FleetDocument(Table, frozen=True, kw_only=True):
    """A fleet file as written: the root of the JSON schema (``sim schema``)."""

    run: RunTable = msgspec.field(default_factory=RunTable)
    csms: CsmsTable = msgspec.field(default_factory=CsmsTable)
    group: Annotated[
        tuple[GroupTable, ...],
        msgspec.Meta(min_length=1, extra={"hint": "add at least one [[group]] table"}),
    ]
    step: tuple[StepTable, ...] = ()
    chaos: tuple[ChaosTable, ...] = ()
    expect: tuple[ExpectTable, ...] = ()
    api: ApiTable | None = None


ARRAYS_OF_TABLES: Final = frozenset({"group", "step", "chaos", "expect"})
"""The root keys written as ``[[key]]`` (lists of tables)."""

SECTIONS: Final[tuple[str, ...]] = FleetDocument.__struct_encode_fields__
"""The root keys of a fleet file."""
