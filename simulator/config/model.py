"""The resolved fleet: what :func:`simulator.config.load_fleet` returns.

Frozen Structs with meaning applied: durations in seconds (floats), ranges as
:class:`~simulator.durations.Range`, charger ids rendered, the target CSMS checked, secrets wrapped
in :class:`Secret`. Everything here is valid by construction (the loader builds it only from a
document that passed every check), so the runtime reads it without further checks.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from collections.abc import Mapping
from typing import Final

import msgspec

from simulator.chaos import Target
from simulator.machines.parts import FirmwareSpec
from simulator.machines.workload import SessionPlan

Scalar = str | int | float | bool
"""A value of an OCPP configuration key, a step/chaos parameter or an expectation parameter."""


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


class TimeMode(enum.StrEnum):
    """``real``: wall-clock time; ``virtual``: fleet and embedded CSMS on trio's mock clock."""

    REAL = "real"
    VIRTUAL = "virtual"


BOOT_STATUSES: Final = ("Accepted", "Pending", "Rejected")
"""What the embedded CSMS may answer to a BootNotification (``[csms.embedded] boot_status``)."""
EMBEDDED: Final = "embedded"
"""The ``[csms] url`` that starts the built-in reference CSMS in-process."""
REDACTED: Final = "<redacted>"
"""What a literal secret reads as in ``Fleet.text``."""
MAX_CHARGER_ID: Final = 48
"""OCPP chargeBoxIdentity is CiString48."""
TRANSPORTS: Final = ("trio-websocket", "websockets")
"""The WebSocket clients a fleet can use (``[csms] transport``); the first is the default."""
DEFAULT_VIRTUAL_EPOCH: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Where the wall clock of a ``time = "virtual"`` run starts when ``[run] epoch`` is not given."""


class Secret(str):
    """A string that hides itself in ``repr()`` (so in logs and tracebacks); ``str()`` and
    comparisons give the real value, for the code that must send it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """The run: ``duration`` in seconds (``None``: until Ctrl-C); ``ledger`` with ``{name}``
    substituted. ``epoch`` is where the wall clock in frames and the ledger starts under virtual
    time (an aware UTC datetime: ``[run] epoch``, else :data:`DEFAULT_VIRTUAL_EPOCH`); ``None``
    under real time, whose wall clock is the machine's. ``validate_csms``: the ``schema_clean``
    check judges every frame the CSMS sent by the official 1.6 JSON schemas as well (after the
    run, from the ledger; slow)."""

    name: str
    seed: int
    duration: float | None
    ledger: str
    time: TimeMode
    epoch: dt.datetime | None = None
    validate_csms: bool = False


class EmbeddedCsms(msgspec.Struct, frozen=True, kw_only=True):
    """Options of the embedded reference CSMS. A presented idTag matching a ``blocked_tags`` glob
    (fnmatch) is Blocked, else one matching ``accepted_tags`` is Accepted, else Invalid.
    ``heartbeat_interval`` is seconds (the BootNotification ``interval``); ``poll_interval``
    seconds between two CALLs of the CSMS to every charger (``None``: it never calls)."""

    boot_status: str
    heartbeat_interval: float
    accepted_tags: tuple[str, ...]
    blocked_tags: tuple[str, ...]
    poll_interval: float | None = None


class Security(msgspec.Struct, frozen=True, kw_only=True):
    """How chargers prove themselves and check the CSMS (OCPP 1.6 security profiles 0-3): HTTP
    Basic ``password`` (profiles 1-2), the CA that signs the server certificate (``ca_file``;
    None: the system trust store, profiles 2-3) and the client certificate and key (profile 3)."""

    security_profile: int
    password: Secret | None
    ca_file: str | None
    cert_file: str | None
    key_file: str | None


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
    transport: str = TRANSPORTS[0]
    """The WebSocket client, one of :data:`TRANSPORTS`: ``trio-websocket`` (default) or
    ``websockets``, the thinner sans-IO client (see tools/bench/fleet.py)."""

    @property
    def security(self) -> Security:
        """The fleet-wide security settings (a group may replace them: ``Group.security``)."""
        return Security(security_profile=self.security_profile, password=self.password,
                        ca_file=self.ca_file, cert_file=self.cert_file, key_file=self.key_file)

    @property
    def is_embedded(self) -> bool:
        """Whether the run starts the built-in reference CSMS."""
        return self.url == EMBEDDED


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """``count`` identical chargers. ``ids`` are the rendered charger ids in order (``n`` = 1..
    count); ``serial`` is the template of chargePointSerialNumber (see :meth:`serial_number`);
    ``config`` overrides OCPP configuration keys; ``connect_rate`` is new connections per second;
    ``sessions`` is the automatic workload of each connector (``None``: none); ``tags`` are
    labels a target picks the group by (``target = { tag = "urban" }``); ``profiles`` the
    feature profiles its chargers implement (None: all); ``firmware`` how their firmware jobs
    behave; ``real_transfers`` whether an http(s) location is really fetched or uploaded;
    ``security`` the group's security settings, [csms]'s with the group's own overrides
    (None: [csms]'s as they are)."""

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
    sessions: SessionPlan | None
    tags: tuple[str, ...] = ()
    profiles: tuple[str, ...] | None = None
    firmware: FirmwareSpec = FirmwareSpec()
    real_transfers: bool = False
    security: Security | None = None

    def serial_number(self, n: int) -> str | None:
        """The serial number of the group's ``n``-th charger (1-based); ``None`` if no template."""
        if self.serial is None:
            return None
        return self.serial.format(n=n, id=self.ids[n - 1])


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """A scripted action on ``target`` (:class:`~simulator.chaos.targets.Target`) at ``at``
    seconds after the start; a connector action (plug, unplug, present_tag, stop, fault,
    clear_fault) with no ``connector`` acts on every connector of each charger. ``params`` are
    checked, defaults filled in (``simulator.config.resolve.STEP_PARAMS``): present_tag needs
    ``id_tag``; stop takes ``reason``, reboot ``hard``, fault ``error_code`` and ``info``,
    disconnect the close ``code`` (it is the ``disconnect`` fault, recorded as a ``fault``
    event)."""

    at: float
    do: StepAction
    target: Target
    params: Mapping[str, Scalar]


class Chaos(msgspec.Struct, frozen=True, kw_only=True):
    """A fault of the catalog (:mod:`simulator.chaos`): first at ``at`` seconds, then every
    ``every`` seconds if set; each time each target is hit with ``probability``; the fault lasts
    ``for_`` seconds (TOML ``for``) if set. ``params`` are checked against the fault's spec
    (:mod:`simulator.chaos.params`), every default filled in, durations in seconds."""

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


class Api(msgspec.Struct, frozen=True, kw_only=True):
    """The control API and dashboard (``[api]``, or ``sim start --api``): ``host`` and ``port``
    it listens on (port 0: any free port), the bearer ``token`` every request must carry (needed
    for an address other than loopback; never recorded), the origins allowed by CORS (none:
    CORS off)."""

    host: str
    port: int
    token: Secret | None = None
    cors: tuple[str, ...] = ()

    @property
    def loopback(self) -> bool:
        """Whether the server listens on a loopback address only."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    api: Api | None = None
    """The control API (``[api]``); None: no API unless ``sim start --api`` asks for one."""

    def charger_ids(self) -> tuple[str, ...]:
        """Every charger id, group by group, in order."""
        return tuple(charger for group in self.groups for charger in group.ids)

    def group_of(self, charger_id: str) -> Group:
        """The group a charger belongs to; ``KeyError`` for an unknown id."""
        for group in self.groups:
            if charger_id in group.ids:
                return group
        raise KeyError(charger_id)
