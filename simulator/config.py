"""The fleet file: TOML in, frozen and validated :class:`Fleet` out, or one clear error line.

Loading goes through fixed stages, each pure but for reading the file:

1. TOML → plain data (``tomllib``), broken syntax reported with line and column;
2. ``${VAR}`` / ``${VAR:-default}`` interpolation in every string value (``$${`` is a literal
   ``${``); a missing variable without default is an error naming the field;
3. environment overrides ``SIM_<PATH>`` with ``__`` for dots (``SIM_CSMS__URL``, ``SIM_RUN__SEED``,
   ``SIM_GROUP__0__COUNT`` or ``SIM_GROUP__AC__COUNT`` by group name), values read as TOML scalars
   when they parse (``9``, ``true``, ``[1, 2]``) and as strings otherwise; then the programmatic
   ``overrides`` (dotted paths, ``{"run.seed": 3, "group[0].count": 5}``), applied last;
4. structure and types: msgspec converts the data into the *file* Structs (``FleetDocument`` and
   its tables, which are also the JSON schema); unknown keys are errors with a suggestion;
5. meaning: durations, ranges, id templates, URL, targets, fault names... into the *resolved*
   Structs (:class:`Fleet`, :class:`Group`, ...) with seconds as floats and :class:`Range`\\ s.

Every failure is a :class:`ConfigError` whose ``str()`` is one line:
``scenarios/x.toml: group[0].count: must be >= 1, got -3``. ``Fleet.text`` is the resolved document
(defaults filled in, overrides applied) as TOML with secrets redacted: it goes to the ledger and
:func:`parse_fleet` reads it back into the same fleet (``sim replay``).

Tables of the format, beyond DESIGN.md's sketch: ``[csms]`` also takes ``password``, ``ca_file``,
``cert_file`` and ``key_file`` (security profiles 1-3); ``[csms.embedded]`` holds the options of the
embedded reference CSMS (``boot_status``, ``heartbeat_interval``, ``accepted_tags``,
``blocked_tags``; ignored with a remote URL); ``[[group]]`` takes ``firmware_version`` and a
``serial`` template; ``[[step]]`` and ``[[chaos]]`` take a ``params`` table for the action or
fault; ``[[expect]]`` entries are ``check`` plus free scalar parameters.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import msgspec

from simulator.durations import (
    DurationError,
    Range,
    format_duration,
    format_range,
    parse_duration,
    parse_duration_range,
    parse_number_range,
)

__all__ = [
    "CHAOS_CATALOG",
    "CHAOS_FAULTS",
    "Chaos",
    "ConfigError",
    "Csms",
    "EmbeddedCsms",
    "Expect",
    "Fleet",
    "FleetDocument",
    "Group",
    "Run",
    "Secret",
    "Sessions",
    "Step",
    "StepAction",
    "Target",
    "TimeMode",
    "describe",
    "json_schema",
    "load_fleet",
    "parse_fleet",
]

Scalar = str | int | float | bool
"""A value of an OCPP configuration key, a step/chaos parameter or an expectation parameter."""

CHAOS_CATALOG: Final[Mapping[str, frozenset[str]]] = {
    "transport": frozenset(
        {
            "latency", "bandwidth", "fragment", "disconnect", "reset", "half_open",
            "slow_close", "partition", "reconnect_storm", "identity_clash",
        }
    ),
    "protocol": frozenset(
        {
            "malformed_json", "bad_message_type", "duplicate_id", "overlong_id",
            "concurrent_call", "unknown_action", "schema_violation", "oversize_payload",
            "late_result", "unsolicited_result", "wrong_id_result", "error_code_spelling",
        }
    ),
    "behaviour": frozenset(
        {
            "clock_skew", "meter_regress", "meter_spike", "duplicate_start",
            "stale_transaction_id", "missing_transaction_id", "connector_fault", "boot_loop",
            "power_loss", "firmware_failure", "slow_responses", "reject_commands",
        }
    ),
    "fleet": frozenset({"blackout", "wave"}),
}  # fmt: skip
"""DESIGN.md's chaos catalog by family: the fault names are a contract with users."""

CHAOS_FAULTS: Final[frozenset[str]] = frozenset().union(*CHAOS_CATALOG.values())
"""Every valid ``[[chaos]] fault`` name."""


class StepAction(enum.StrEnum):
    """What a ``[[step]]`` does to its target chargers/connectors."""

    PLUG = "plug"
    UNPLUG = "unplug"
    PRESENT_TAG = "present_tag"
    STOP = "stop"
    REBOOT = "reboot"
    FAULT = "fault"
    CLEAR_FAULT = "clear_fault"
    DISCONNECT = "disconnect"
    RECONNECT = "reconnect"


class TimeMode(enum.StrEnum):
    """``real``: wall-clock time; ``virtual``: fleet and embedded CSMS on trio's mock clock."""

    REAL = "real"
    VIRTUAL = "virtual"


BOOT_STATUSES: Final = ("Accepted", "Pending", "Rejected")
EMBEDDED: Final = "embedded"
REDACTED: Final = "<redacted>"
MAX_CHARGER_ID: Final = 48  # OCPP chargeBoxIdentity is CiString48

# --- the file as written (structure, types, JSON schema) ------------------------------------------

_NUMBER_PATTERN: Final = r"(\d+(\.\d*)?|\.\d+)"
# The JSON schema's view of simulator.durations.parse_duration, for editors.
_DURATION_PATTERN: Final = rf"^\s*({_NUMBER_PATTERN}\s*|({_NUMBER_PATTERN}\s*(ms|d|h|m|s)\s*)+)$"
DurationText = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": _DURATION_PATTERN})]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Duration = Annotated[
    DurationText | Seconds, msgspec.Meta(description='Seconds, or "500ms", "30s", "2m", "1h30m"')
]
DurationRange = Annotated[
    str | float, msgspec.Meta(description='A duration or a range of durations, e.g. "20m..2h"')
]
NumberRange = Annotated[
    str | float, msgspec.Meta(description='A number or a range of numbers, e.g. "5..40"')
]
CiString20 = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
ScalarTable = dict[str, Scalar]


TimeName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": [m.value for m in TimeMode]})]
BootStatusName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(BOOT_STATUSES)})]
StepActionName = Annotated[
    str, msgspec.Meta(extra_json_schema={"enum": [a.value for a in StepAction]})
]
FaultName = Annotated[str, msgspec.Meta(extra_json_schema={"enum": sorted(CHAOS_FAULTS)})]


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the file tables: unknown keys are errors."""


class RunTable(_Table, frozen=True, kw_only=True):
    """[run]: name, seed, duration, ledger path and time mode of the run."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    seed: int = 0
    duration: Duration | None = None
    ledger: str = "runs/{name}.db"
    time: TimeName = "real"


class EmbeddedTable(_Table, frozen=True, kw_only=True):
    """[csms.embedded]: how the built-in reference CSMS answers (only with url = "embedded")."""

    boot_status: BootStatusName = "Accepted"
    heartbeat_interval: Duration = 60.0
    accepted_tags: tuple[str, ...] = ("*",)
    blocked_tags: tuple[str, ...] = ("BLOCKED*",)


class CsmsTable(_Table, frozen=True, kw_only=True):
    """[csms]: the central system the chargers connect to."""

    url: str = EMBEDDED
    security_profile: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    transport: str = "trio-websocket"
    embedded: EmbeddedTable = msgspec.field(default_factory=EmbeddedTable)


class SessionsTable(_Table, frozen=True, kw_only=True):
    """[group.sessions]: automatic transactions, Poisson arrivals per connector."""

    arrivals_per_hour: Annotated[float, msgspec.Meta(ge=0)]
    duration: DurationRange = "20m..2h"
    energy_kwh: NumberRange = "5..40"
    id_tags: Annotated[tuple[CiString20, ...], msgspec.Meta(min_length=1)]


class GroupTable(_Table, frozen=True, kw_only=True):
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


class TargetTable(_Table, frozen=True, kw_only=True):
    """Who a step or fault applies to: ``ids`` or ``group`` (or the whole fleet), a seeded
    ``fraction`` of those, and optionally one ``connector``."""

    ids: tuple[str, ...] | None = None
    group: str | None = None
    fraction: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    connector: Annotated[int, msgspec.Meta(ge=0)] | None = None


class StepTable(_Table, frozen=True, kw_only=True):
    """[[step]]: a scripted domain action at a time."""

    at: Duration
    do: StepActionName
    target: TargetTable = msgspec.field(default_factory=TargetTable)
    params: ScalarTable = {}


class ChaosTable(_Table, frozen=True, kw_only=True):
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


class FleetDocument(_Table, frozen=True, kw_only=True):
    """A fleet file as written: the root of the JSON schema (``sim schema``)."""

    run: RunTable = msgspec.field(default_factory=RunTable)
    csms: CsmsTable = msgspec.field(default_factory=CsmsTable)
    group: Annotated[tuple[GroupTable, ...], msgspec.Meta(min_length=1)]
    step: tuple[StepTable, ...] = ()
    chaos: tuple[ChaosTable, ...] = ()
    expect: tuple[ExpectTable, ...] = ()


_TABLES: Final[Mapping[tuple[str, ...], type[_Table]]] = {
    (): FleetDocument,
    ("run",): RunTable,
    ("csms",): CsmsTable,
    ("csms", "embedded"): EmbeddedTable,
    ("group",): GroupTable,
    ("group", "sessions"): SessionsTable,
    ("step",): StepTable,
    ("step", "target"): TargetTable,
    ("chaos",): ChaosTable,
    ("chaos", "target"): TargetTable,
}
_ARRAYS_OF_TABLES: Final = frozenset({"group", "step", "chaos", "expect"})

# --- the resolved fleet ---------------------------------------------------------------------------


class Secret(str):
    """A string that hides itself in ``repr()`` (so in logs and tracebacks); ``str()`` and
    comparisons give the real value, for the code that must send it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """The run: ``duration`` in seconds (``None``: until Ctrl-C); ``ledger`` with ``{name}``
    substituted."""

    name: str
    seed: int
    duration: float | None
    ledger: str
    time: TimeMode


class EmbeddedCsms(msgspec.Struct, frozen=True, kw_only=True):
    """Options of the embedded reference CSMS. A presented idTag matching a ``blocked_tags`` glob
    (fnmatch) is Blocked, else one matching ``accepted_tags`` is Accepted, else Invalid.
    ``heartbeat_interval`` is seconds (the BootNotification ``interval``)."""

    boot_status: str
    heartbeat_interval: float
    accepted_tags: tuple[str, ...]
    blocked_tags: tuple[str, ...]


class Csms(msgspec.Struct, frozen=True, kw_only=True):
    """The target: ``url`` is ``"embedded"`` or a ws:// / wss:// URL to which the charger identity
    is appended. Profile 1-2 use ``password`` (HTTP basic auth), 2-3 need wss://, 3 needs the
    client ``cert_file`` and ``key_file``; ``ca_file`` replaces the system trust store."""

    url: str
    security_profile: int
    password: Secret | None
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    embedded: EmbeddedCsms
    transport: str = "trio-websocket"
    """The WebSocket client: ``trio-websocket`` (default), or one of the thinner sans-IO layers
    parsed inline in the charger's own task, ``websockets`` (the cheapest) or ``wsproto`` (see
    tools/bench/fleet.py)."""

    @property
    def is_embedded(self) -> bool:
        """Whether the run starts the built-in reference CSMS."""
        return self.url == EMBEDDED


class Sessions(msgspec.Struct, frozen=True, kw_only=True):
    """Automatic transactions: Poisson arrivals per connector; ``duration`` is a range in seconds,
    ``energy_kwh`` a range in kWh; each session presents one of ``id_tags``."""

    arrivals_per_hour: float
    duration: Range
    energy_kwh: Range
    id_tags: tuple[str, ...]


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """``count`` identical chargers. ``ids`` are the rendered charger ids in order (``n`` = 1..
    count); ``serial`` is the template of chargePointSerialNumber (see :meth:`serial_number`);
    ``config`` overrides OCPP configuration keys; ``connect_rate`` is new connections per second."""

    name: str
    count: int
    id: str
    ids: tuple[str, ...]
    vendor: str
    model: str
    firmware_version: str | None
    serial: str | None
    connectors: int
    max_power_kw: float
    connect_rate: float
    config: Mapping[str, Scalar]
    sessions: Sessions | None

    def serial_number(self, n: int) -> str | None:
        """The serial number of the group's ``n``-th charger (1-based); ``None`` if no template."""
        if self.serial is None:
            return None
        return self.serial.format(n=n, id=self.ids[n - 1])


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """Chargers ``ids`` or those of ``group`` (neither: the whole fleet), of which a seeded
    ``fraction`` is picked; ``connector`` ``None`` means every connector (or the charger itself)."""

    ids: tuple[str, ...] = ()
    group: str | None = None
    fraction: float = 1.0
    connector: int | None = None


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """A scripted action at ``at`` seconds after the start. ``params`` by action: present_tag
    needs ``id_tag``; others pass through (e.g. fault ``error_code``, stop ``reason``)."""

    at: float
    do: StepAction
    target: Target
    params: Mapping[str, Scalar]


class Chaos(msgspec.Struct, frozen=True, kw_only=True):
    """A fault: first at ``at`` seconds, then every ``every`` seconds if set; each time each target
    is hit with ``probability``; the fault lasts ``for_`` seconds (TOML ``for``) if set."""

    fault: str
    target: Target
    at: float
    every: float | None
    probability: float
    for_: float | None
    params: Mapping[str, Scalar]


class Expect(msgspec.Struct, frozen=True, kw_only=True):
    """A verdict: ``check`` names it, ``params`` are the other keys as written (``p95 = "2s"``)."""

    check: str
    params: Mapping[str, Scalar]


class Fleet(msgspec.Struct, frozen=True, kw_only=True):
    """A validated fleet file. ``source`` is the file path (``None`` for text), ``text`` the
    resolved document as TOML with secrets redacted (for the ledger), ``sha256`` its hex digest."""

    run: Run
    csms: Csms
    groups: tuple[Group, ...]
    steps: tuple[Step, ...]
    chaos: tuple[Chaos, ...]
    expect: tuple[Expect, ...]
    source: str | None
    text: str
    sha256: str

    def charger_ids(self) -> tuple[str, ...]:
        """Every charger id, group by group, in order."""
        return tuple(charger for group in self.groups for charger in group.ids)

    def group_of(self, charger_id: str) -> Group:
        """The group a charger belongs to; ``KeyError`` for an unknown id."""
        for group in self.groups:
            if charger_id in group.ids:
                return group
        raise KeyError(charger_id)


# --- errors ---------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


class ConfigError(Exception):
    """A fleet file (or override) the simulator cannot use. ``str()`` is one line:
    ``<file>: <field>: <what is wrong and what to do>`` (the field is omitted for file-level
    problems such as unreadable files or broken TOML)."""

    def __init__(self, source: str, field: str | None, message: str) -> None:
        self.source = source
        self.field = field
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.field:
            return f"{self.source}: {self.field}: {self.message}"
        return f"{self.source}: {self.message}"


class _Invalid(Exception):
    """Raised inside the stages with a data path; turned into a ConfigError at the top."""

    def __init__(self, path: Path_, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _field_name(path: Path_) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _show(value: object) -> str:
    """A value as the user wrote it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _one_of(word: str, choices: Sequence[str]) -> str:
    listed = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."
    return f"expected one of {listed}{_suggest(word, choices)}"


# --- stage 1-3: read, interpolate, override ------------------------------------------------------

_VARIABLE: Final = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TOML_POSITION: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        where = _TOML_POSITION.search(message)
        if where:
            message = message[: where.start()]
            at = f"line {where.group(1)}, column {where.group(2)}: "
        else:
            at = ""
        raise ConfigError(source, None, f"{at}invalid TOML: {message}; fix the syntax") from None


def _interpolate(
    value: object, path: Path_, env: Mapping[str, str], originals: dict[Path_, str]
) -> object:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, originals) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, originals) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise _Invalid(
            path,
            f"environment variable {name} is not set; set it, or write ${{{name}:-default}}",
        )

    originals[path] = value
    return _VARIABLE.sub(replace, value)


def _scalar_from_env(text: str) -> object:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parse_dotted(dotted: str) -> Path_:
    parts: list[str | int] = []
    for segment in dotted.split("."):
        match = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", segment)
        if match is None or (not match.group(1) and not match.group(2)):
            raise _Invalid(
                (), f"override {dotted!r} is not a dotted path like 'group[0].count' or 'run.seed'"
            )
        if match.group(1):
            parts.append(int(match.group(1)) if match.group(1).isdigit() else match.group(1))
        parts.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    return tuple(parts)


def _set(data: dict[str, Any], path: Path_, value: object, label: str, fold: bool) -> Path_:
    """Set ``value`` at ``path`` in ``data``; returns the real path used. ``fold``: match keys
    case-insensitively and list items by their ``name`` (environment variables are upper case)."""
    container: Any = data
    real: list[str | int] = []
    by = f" (set by {label})"
    for position, part in enumerate(path):
        last = position == len(path) - 1
        if isinstance(container, list):
            index = _list_index(container, part, fold)
            if index is None:
                raise _Invalid(
                    tuple(real),
                    f"has no entry {part!r} (the file has {len(container)}); use an index "
                    f"from 0 or a group name{by}",
                )
            real.append(index)
            if last:
                container[index] = value
            else:
                container = container[index]
            continue
        if not isinstance(container, dict):
            raise _Invalid(tuple(real), f"is {_show(container)}, it has no key {part!r}{by}")
        key = str(part)
        if key not in container and fold:
            key = next((k for k in container if k.lower() == key.lower()), key.lower())
        if not real and key not in FleetDocument.__struct_encode_fields__:
            known = list(FleetDocument.__struct_encode_fields__)
            raise _Invalid((key,), f"unknown section{_suggest(key, known)}{by}")
        real.append(key)
        if last:
            container[key] = value
        else:
            container = container.setdefault(
                key, [] if real == [key] and key in _ARRAYS_OF_TABLES else {}
            )
    return tuple(real)


def _list_index(items: list[Any], part: str | int, fold: bool) -> int | None:
    if isinstance(part, int) or (isinstance(part, str) and part.isdigit()):
        index = int(part)
        return index if 0 <= index < len(items) else None
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and (name == part or (fold and name.lower() == part.lower())):
            return index
    return None


def _apply_overrides(
    data: dict[str, Any], env: Mapping[str, str], overrides: Mapping[str, object] | None
) -> dict[Path_, str]:
    """Apply ``SIM_*`` then programmatic overrides in place; returns path → who set it."""
    origins: dict[Path_, str] = {}
    for name in sorted(env):
        if not name.startswith("SIM_") or "__" not in name[4:]:
            continue
        path = tuple(part.lower() for part in name[4:].split("__"))
        real = _set(data, path, _scalar_from_env(env[name]), name, fold=True)
        origins[real] = name
    for dotted, value in (overrides or {}).items():
        label = f"override {dotted!r}"
        real = _set(data, _parse_dotted(dotted), value, label, fold=False)
        origins[real] = label
    return origins


# --- stage 4: structure and types -----------------------------------------------------------------

_LOCATION: Final = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_TYPE_NAMES: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "a table",
    "null": "absent",
    "datetime": "a date-time",
    "date": "a date",
    "time": "a time",
}


def _parse_location(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for key, index, quoted in re.findall(
        r"\.([A-Za-z0-9_-]+)|\[(\d+|\.\.\.)\]|\[(\"[^]]*\")\]", text
    ):
        if key:
            parts.append(key)
        elif index:
            parts.append(index if index == "..." else int(index))
        else:
            parts.append(json.loads(quoted))
    return parts


def _lookup(data: object, path: Path_) -> object:
    for part in path:
        in_table = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if in_table or in_list:
            data = data[part]  # type: ignore[index]
        else:
            return None
    return data


def _table_at(path: Path_) -> type[_Table] | None:
    return _TABLES.get(tuple(p for p in path if isinstance(p, str)))


def _expected(types: str) -> str:
    names = [t.strip() for t in types.split("|") if t.strip() != "null"]
    if set(names) == {"bool", "int", "float", "str"}:
        return "a string, a number or true/false"
    if set(names) == {"str", "float"}:
        return 'a duration such as "30s" or a number of seconds (or a range such as "20m..2h")'
    return " or ".join(_TYPE_NAMES.get(n, n) for n in names)


def _structure_error(error: msgspec.ValidationError, data: dict[str, Any]) -> _Invalid:
    text = str(error)
    location = _LOCATION.search(text)
    message = text[: location.start()] if location else text
    parts = _parse_location(location.group("path")) if location else []
    if "..." in parts:  # a value inside a free table (config, params, expect): find the culprit
        cut = parts.index("...")
        table = _lookup(data, tuple(parts[:cut]))
        culprit = next(
            (k for k, v in (table.items() if isinstance(table, dict) else ())
             if not isinstance(v, (str, int, float, bool))),
            "?",
        )  # fmt: skip
        parts = [*parts[:cut], culprit]
    path: Path_ = tuple(parts)
    value = _lookup(data, path)
    if match := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        key = match.group(1)
        table = _table_at(path)
        known = list(table.__struct_encode_fields__) if table else []
        return _Invalid(
            (*path, key),
            f"unknown key{_suggest(key, known)}"
            + (f" (known keys: {', '.join(known)})" if known else ""),
        )
    if match := re.fullmatch(r"Object missing required field `(.+)`", message):
        key = match.group(1)
        hint = "add at least one [[group]] table" if (*path, key) == ("group",) else "add it"
        return _Invalid((*path, key), f"is required; {hint}")
    if match := re.fullmatch(r"Expected `(\w+)` (>=|>|<=|<) (\S+)", message):
        bound = match.group(3).removesuffix(".0")
        return _Invalid(path, f"must be {match.group(2)} {bound}, got {_show(value)}")
    if match := re.fullmatch(r"Expected `str` of length (<=|>=) (\d+)", message):
        size = len(value) if isinstance(value, str) else 0
        limit = "at most" if match.group(1) == "<=" else "at least"
        return _Invalid(
            path, f"must be {limit} {match.group(2)} characters long, got {size} ({_show(value)})"
        )
    if match := re.fullmatch(r"Expected `array` of length >= (\d+)", message):
        if path == ("group",):
            return _Invalid(path, "is empty; add at least one [[group]] table")
        return _Invalid(path, f"must list at least {match.group(1)} item(s)")
    if match := re.fullmatch(r"Expected `(.+)`, got `(\w+)`", message):
        got = _TYPE_NAMES.get(match.group(2), match.group(2))
        if len(path) == 1 and path[0] in _ARRAYS_OF_TABLES and isinstance(value, dict):
            return _Invalid(
                path, f"must be written [[{path[0]}]] (a list of tables), not [{path[0]}]"
            )
        shown = "" if isinstance(value, (dict, list)) else f" {_show(value)}"
        if isinstance(value, bool):
            got, shown = _show(value), ""
        return _Invalid(path, f"must be {_expected(match.group(1))}, got {got}{shown}")
    return _Invalid(path, message)


# --- stage 5: meaning ----------------------------------------------------------------------------

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CHARGER_ID: Final = re.compile(r"[A-Za-z0-9._~:-]+")
_DEFAULT_NAME: Final = "fleet"


def _duration(value: str | float, path: Path_, *, positive: bool = False) -> float:
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        raise _Invalid(path, str(error)) from None
    if positive and seconds <= 0:
        raise _Invalid(path, f"must be longer than 0s, got {_show(value)}")
    return seconds


def _range(value: str | float, path: Path_, parse: Callable[[str | float], Range]) -> Range:
    try:
        return parse(value)
    except DurationError as error:
        raise _Invalid(path, str(error)) from None


TRANSPORTS: Final = ("trio-websocket", "wsproto", "websockets")
"""The WebSocket clients a fleet can use (``[csms] transport``)."""


def _choose(value: str, choices: Sequence[str], path: Path_) -> str:
    if value not in choices:
        raise _Invalid(path, f"unknown value {_show(value)}; {_one_of(value, choices)}")
    return value


def _resolve_run(table: RunTable, default_name: str) -> Run:
    name = table.name if table.name is not None else default_name
    if not _NAME.fullmatch(name):
        raise _Invalid(
            ("run", "name"),
            f"{_show(name)} must be letters, digits, '.', '_' or '-' (it names the ledger file)",
        )
    ledger = _render(table.ledger, ("run", "ledger"), name=name)
    duration = None
    if table.duration is not None:
        duration = _duration(table.duration, ("run", "duration"), positive=True)
    time = _choose(table.time, [m.value for m in TimeMode], ("run", "time"))
    return Run(name=name, seed=table.seed, duration=duration, ledger=ledger, time=TimeMode(time))


def _check_url(url: str) -> None:
    path = ("csms", "url")
    if url == EMBEDDED:
        return
    hint = 'write "embedded" or a URL like "ws://host:9000/ocpp"'
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise _Invalid(path, f"{_show(url)} is not a valid URL ({error}); {hint}") from None
    if parts.scheme not in ("ws", "wss"):
        raise _Invalid(
            path, f'{_show(url)} must be "embedded" or start with ws:// or wss://; {hint}'
        )
    if not parts.hostname:
        raise _Invalid(path, f"{_show(url)} has no host; {hint}")
    if parts.query or parts.fragment:
        raise _Invalid(
            path,
            f"{_show(url)} must not have a query or fragment (the charger "
            "identity is appended to the path)",
        )


def _resolve_csms(table: CsmsTable) -> Csms:
    _check_url(table.url)
    profile = table.security_profile
    if profile in (1, 2) and not table.password:
        raise _Invalid(
            ("csms", "password"),
            f"security_profile {profile} needs a password; "
            'write password = "${SIM_CSMS_PASSWORD}"',
        )
    if profile >= 2 and not table.url.startswith("wss://"):
        raise _Invalid(("csms", "url"), f"security_profile {profile} needs TLS: use a wss:// URL")
    if profile == 3 and not (table.cert_file and table.key_file):
        missing = "cert_file" if not table.cert_file else "key_file"
        raise _Invalid(
            ("csms", missing),
            "security_profile 3 (mutual TLS) needs cert_file and "
            "key_file (client certificate and private key)",
        )
    embedded = table.embedded
    boot_status = _choose(embedded.boot_status, BOOT_STATUSES, ("csms", "embedded", "boot_status"))
    heartbeat = _duration(
        embedded.heartbeat_interval, ("csms", "embedded", "heartbeat_interval"), positive=True
    )
    transport = _choose(table.transport, TRANSPORTS, ("csms", "transport"))
    return Csms(
        url=table.url,
        transport=transport,
        security_profile=profile,
        password=Secret(table.password) if table.password is not None else None,
        ca_file=table.ca_file,
        cert_file=table.cert_file,
        key_file=table.key_file,
        embedded=EmbeddedCsms(
            boot_status=boot_status,
            heartbeat_interval=heartbeat,
            accepted_tags=embedded.accepted_tags,
            blocked_tags=embedded.blocked_tags,
        ),
    )


def _render(template: str, path: Path_, example: str = "", **fields: object) -> str:
    """``template.format(**fields)``, or an error naming the placeholders that may be used."""
    allowed = ", ".join("{" + name + "}" for name in fields)
    try:
        return template.format(**fields)
    except KeyError as error:
        problem = f"unknown placeholder {{{error.args[0]}}}"
    except IndexError:
        problem = "positional placeholder {}"
    except ValueError as error:
        problem = str(error)
    raise _Invalid(
        path,
        f"cannot fill in {_show(template)}: {problem}; the placeholders are {allowed}{example}",
    )


def _charger_ids(table: GroupTable, index: int) -> tuple[str, ...]:
    path: Path_ = ("group", index, "id")
    ids = tuple(
        _render(table.id, path, ', e.g. "AC-{n:04}"', n=n) for n in range(1, table.count + 1)
    )
    if table.count > 1 and ids[0] == ids[1]:
        raise _Invalid(
            path,
            f"{_show(table.id)} gives the same id {_show(ids[0])} to every "
            'charger; put {n} in it, e.g. "AC-{n:04}"',
        )
    for charger in ids:
        if not _CHARGER_ID.fullmatch(charger) or len(charger) > MAX_CHARGER_ID:
            raise _Invalid(
                path,
                f"charger id {_show(charger)} must be 1-{MAX_CHARGER_ID} "
                "letters, digits or . _ ~ : - (it is appended to the URL)",
            )
    return ids


def _resolve_sessions(table: SessionsTable, index: int) -> Sessions:
    base: Path_ = ("group", index, "sessions")
    return Sessions(
        arrivals_per_hour=table.arrivals_per_hour,
        duration=_range(table.duration, (*base, "duration"), parse_duration_range),
        energy_kwh=_range(table.energy_kwh, (*base, "energy_kwh"), parse_number_range),
        id_tags=table.id_tags,
    )


def _resolve_groups(tables: tuple[GroupTable, ...]) -> tuple[Group, ...]:
    groups: list[Group] = []
    owners: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, table in enumerate(tables):
        if table.name in names:
            raise _Invalid(
                ("group", index, "name"),
                f"{_show(table.name)} is already the name "
                f"of group[{names[table.name]}]; rename one",
            )
        names[table.name] = index
        ids = _charger_ids(table, index)
        for charger in ids:
            owner = owners.setdefault(charger, index)
            if owner != index:
                raise _Invalid(
                    ("group", index, "id"),
                    f"charger id {_show(charger)} is also made "
                    f"by group[{owner}].id; give the groups different prefixes",
                )
        if table.serial is not None:
            for n in (1, table.count):
                serial = _render(
                    table.serial,
                    ("group", index, "serial"),
                    ', e.g. "SN-{n:06}"',
                    n=n,
                    id=ids[n - 1],
                )
                if len(serial) > 25:
                    raise _Invalid(
                        ("group", index, "serial"),
                        f"serial {_show(serial)} is longer "
                        "than 25 characters (OCPP chargePointSerialNumber)",
                    )
        groups.append(
            Group(
                name=table.name,
                count=table.count,
                id=table.id,
                ids=ids,
                vendor=table.vendor,
                model=table.model,
                firmware_version=table.firmware_version,
                serial=table.serial,
                connectors=table.connectors,
                max_power_kw=float(table.max_power_kw),
                connect_rate=float(table.connect_rate),
                config=dict(table.config),
                sessions=None
                if table.sessions is None
                else _resolve_sessions(table.sessions, index),
            )
        )
    return tuple(groups)


def _resolve_target(table: TargetTable, base: Path_, groups: tuple[Group, ...]) -> Target:
    if table.ids is not None and table.group is not None:
        raise _Invalid(base, "give ids or group, not both")
    by_name = {group.name: group for group in groups}
    chosen: list[Group]
    if table.group is not None:
        if table.group not in by_name:
            raise _Invalid(
                (*base, "group"),
                f"no group named {_show(table.group)}; {_one_of(table.group, list(by_name))}",
            )
        chosen = [by_name[table.group]]
    elif table.ids is not None:
        if not table.ids:
            raise _Invalid((*base, "ids"), "is empty; list charger ids or leave ids out")
        owner = {charger: group for group in groups for charger in group.ids}
        for position, charger in enumerate(table.ids):
            if charger not in owner:
                hint = _suggest(charger, list(owner)) if len(owner) <= 10_000 else ""
                raise _Invalid(
                    (*base, "ids", position), f"no charger {_show(charger)} in the fleet{hint}"
                )
        chosen = list({owner[charger].name: owner[charger] for charger in table.ids}.values())
    else:
        chosen = list(groups)
    if table.connector is not None:
        for group in chosen:
            if table.connector > group.connectors:
                raise _Invalid(
                    (*base, "connector"),
                    f"connector {table.connector} does not exist"
                    f" in group {_show(group.name)} ({group.connectors} connectors)",
                )
    return Target(
        ids=table.ids or (),
        group=table.group,
        fraction=float(table.fraction),
        connector=table.connector,
    )


_CONNECTOR_ACTIONS: Final = frozenset(
    {StepAction.PLUG, StepAction.UNPLUG, StepAction.PRESENT_TAG, StepAction.STOP}
)


def _resolve_step(table: StepTable, index: int, groups: tuple[Group, ...]) -> Step:
    base: Path_ = ("step", index)
    action = StepAction(_choose(table.do, [a.value for a in StepAction], (*base, "do")))
    target = _resolve_target(table.target, (*base, "target"), groups)
    if action in _CONNECTOR_ACTIONS and target.connector == 0:
        raise _Invalid((*base, "target", "connector"), f"{action.value} needs a connector >= 1")
    if action is StepAction.PRESENT_TAG:
        tag = table.params.get("id_tag")
        if not isinstance(tag, str) or not 1 <= len(tag) <= 20:
            raise _Invalid(
                (*base, "params", "id_tag"),
                "present_tag needs params.id_tag, a string of 1-20 characters",
            )
    return Step(
        at=_duration(table.at, (*base, "at")), do=action, target=target, params=dict(table.params)
    )


def _resolve_chaos(table: ChaosTable, index: int, groups: tuple[Group, ...]) -> Chaos:
    base: Path_ = ("chaos", index)
    if table.fault not in CHAOS_FAULTS:
        raise _Invalid(
            (*base, "fault"),
            f"unknown fault {_show(table.fault)}; {_one_of(table.fault, sorted(CHAOS_FAULTS))}",
        )
    every = None if table.every is None else _duration(table.every, (*base, "every"), positive=True)
    lasting = None if table.for_ is None else _duration(table.for_, (*base, "for"), positive=True)
    return Chaos(
        fault=table.fault,
        target=_resolve_target(table.target, (*base, "target"), groups),
        at=_duration(table.at, (*base, "at")),
        every=every,
        probability=float(table.probability),
        for_=lasting,
        params=dict(table.params),
    )


def _resolve_expect(table: Mapping[str, Scalar], index: int) -> Expect:
    check = table.get("check")
    if not isinstance(check, str) or not _NAME.fullmatch(check):
        raise _Invalid(
            ("expect", index, "check"),
            'is required: the name of a check, e.g. check = "no_lost_transactions"',
        )
    return Expect(check=check, params={k: v for k, v in table.items() if k != "check"})


# --- the resolved document as TOML ----------------------------------------------------------------


def _is_secret(path: Path_) -> bool:
    last = str(path[-1]).lower() if path else ""
    if "password" in last:
        return True
    if path[:1] == ("csms",) and "key" in last:
        return True
    return (
        len(path) >= 3
        and path[0] == "group"
        and path[2] == "config"
        and last == ("authorizationkey")
    )


def _redact(value: object, path: Path_, originals: Mapping[Path_, str]) -> object:
    """The document for the ledger: secrets replaced by their ``${VAR}`` reference or
    ``<redacted>``, other strings escaped so that interpolation leaves them as they are."""
    if isinstance(value, dict):
        return {k: _redact(v, (*path, k), originals) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_redact(v, (*path, i), originals) for i, v in enumerate(value)]
    if _is_secret(path):
        return originals.get(path, REDACTED)
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _dump_toml(table: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    def nested(value: object) -> bool:
        return isinstance(value, dict) and bool(value)

    def array_of_tables(value: object) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}"
        for k, v in table.items()
        if not nested(v) and not array_of_tables(v)
    ]
    for key, value in table.items():
        header = ".".join(_toml_key(part) for part in (*prefix, key))
        if nested(value):
            lines += ["", f"[{header}]", *_dump_toml(value, (*prefix, key))]
        elif array_of_tables(value):
            for item in value:
                lines += ["", f"[[{header}]]", *_dump_toml(item, (*prefix, key))]
    return lines


def _document_text(doc: FleetDocument, run: Run, originals: Mapping[Path_, str]) -> str:
    data = msgspec.to_builtins(doc)
    data["run"]["name"] = run.name
    data["run"]["ledger"] = run.ledger
    redacted = _redact(data, (), originals)
    assert isinstance(redacted, dict)
    redacted = {k: v for k, v in redacted.items() if v != []}  # no step/chaos/expect: no key
    lines = _dump_toml(redacted)
    return "\n".join(lines).lstrip("\n") + "\n"


# --- public API -----------------------------------------------------------------------------------


def _default_name(source: str | None) -> str:
    if source is None:
        return _DEFAULT_NAME
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).stem).strip("-._")
    return stem or _DEFAULT_NAME


def _build(
    data: dict[str, Any],
    source: str | None,
    env: Mapping[str, str],
    overrides: Mapping[str, object] | None,
) -> Fleet:
    originals: dict[Path_, str] = {}
    interpolated = _interpolate(data, (), env, originals)
    assert isinstance(interpolated, dict)
    origins = _apply_overrides(interpolated, env, overrides)
    for written in [p for p in originals if any(p[: len(o)] == o for o in origins)]:
        del originals[written]  # overridden: the file's ${VAR} reference no longer applies
    try:
        doc = msgspec.convert(interpolated, FleetDocument)
    except msgspec.ValidationError as error:
        raise _with_origin(_structure_error(error, interpolated), origins) from None
    try:
        run = _resolve_run(doc.run, _default_name(source))
        groups = _resolve_groups(doc.group)
        csms = _resolve_csms(doc.csms)
        steps = tuple(_resolve_step(s, i, groups) for i, s in enumerate(doc.step))
        chaos = tuple(_resolve_chaos(c, i, groups) for i, c in enumerate(doc.chaos))
        expect = tuple(_resolve_expect(e, i) for i, e in enumerate(doc.expect))
    except _Invalid as invalid:
        raise _with_origin(invalid, origins) from None
    text = _document_text(doc, run, originals)
    return Fleet(
        run=run,
        csms=csms,
        groups=groups,
        steps=steps,
        chaos=chaos,
        expect=expect,
        source=source,
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def _with_origin(invalid: _Invalid, origins: Mapping[Path_, str]) -> _Invalid:
    for length in range(len(invalid.path), 0, -1):
        origin = origins.get(invalid.path[:length])
        if origin is not None:
            return _Invalid(invalid.path, f"{invalid.message} (set by {origin})")
    return invalid


def parse_fleet(
    text: str,
    *,
    source: str | None = None,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] | None = None,
) -> Fleet:
    """Parse a fleet file's ``text``. ``source`` is the path used in error messages, as
    ``Fleet.source`` and for the default run name (its stem); ``None`` reads as ``<string>``.
    ``env`` feeds ``${VAR}`` interpolation and ``SIM_*`` overrides; ``overrides`` (dotted path →
    value, values used as given) are applied last. Raises :class:`ConfigError`."""
    label = source if source is not None else "<string>"
    data = _read_toml(text, label)
    try:
        return _build(data, source, env, overrides)
    except _Invalid as invalid:
        raise ConfigError(label, _field_name(invalid.path) or None, invalid.message) from None


def load_fleet(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] | None = None,
) -> Fleet:
    """Read and parse the fleet file at ``path`` (UTF-8 TOML); see :func:`parse_fleet`.
    Raises :class:`ConfigError` for unreadable files too."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(source, None, f"cannot read the file: {reason}; check the path") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            source, None, f"not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from None
    return parse_fleet(text, source=source, env=env, overrides=overrides)


def describe(fleet: Fleet) -> str:
    """The resolved fleet for people (``sim check``): a summary in TOML comments, then the
    resolved document (``fleet.text``, secrets redacted)."""
    run = fleet.run
    lines = [
        f"# {fleet.source or '<string>'}: run {run.name!r}, seed {run.seed}, "
        f"duration {format_duration(run.duration) if run.duration is not None else 'until Ctrl-C'}"
        f", {run.time} time, ledger {run.ledger}",
        f"# csms: {fleet.csms.url} (security profile {fleet.csms.security_profile})",
        f"# {len(fleet.charger_ids())} chargers, sha256 {fleet.sha256[:16]}",
    ]
    for group in fleet.groups:
        span = group.ids[0] if group.count == 1 else f"{group.ids[0]} .. {group.ids[-1]}"
        sessions = ""
        if group.sessions is not None:
            s = group.sessions
            sessions = (
                f", sessions {s.arrivals_per_hour:g}/h x {format_range(s.duration)}, "
                f"{format_range(s.energy_kwh, duration=False)} kWh"
            )
        lines.append(
            f"#   {group.name}: {group.count} x {span}, {group.connectors} connector(s),"
            f" {group.max_power_kw:g} kW{sessions}"
        )
    lines.append(
        f"# {len(fleet.steps)} step(s), {len(fleet.chaos)} fault(s), "
        f"{len(fleet.expect)} expectation(s)"
    )
    return "\n".join(lines) + "\n\n" + fleet.text


def json_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of the fleet file format, for ``sim schema`` and editors."""
    schema = msgspec.json.schema(FleetDocument)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "OCPP chaos simulator fleet file",
        **schema,
    }
