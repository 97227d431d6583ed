"""Stage 5 of loading: meaning. The checked file tables become the resolved :class:`Fleet` parts.

Durations become seconds, ranges :class:`~simulator.durations.Range`\\ s, templates are filled in
(charger ids, serials, the ledger path), names from a closed set are matched (time mode, boot
status, transport, step action; fault names through :mod:`simulator.chaos`), targets are checked
against the fleet's groups and chargers. Each function raises
:class:`~simulator.config.errors.Invalid` at the field at fault, with a message that says what to
write instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit

from simulator.chaos import CatalogError, Target, check_fault, check_schedule, check_target
from simulator.chaos.params import FAULT_SPECS, Kind, Param, check_params, check_values
from simulator.config.errors import FieldPath, Invalid, one_of, show, suggest
from simulator.config.model import (
    BOOT_STATUSES,
    DEFAULT_VIRTUAL_EPOCH,
    EMBEDDED,
    MAX_CHARGER_ID,
    TRANSPORTS,
    Api,
    Chaos,
    Csms,
    EmbeddedCsms,
    Expect,
    Group,
    Run,
    Scalar,
    Secret,
    Security,
    Step,
    StepAction,
    TimeMode,
)
from simulator.config.tables import (
    ApiTable,
    ChaosTable,
    CsmsTable,
    FirmwareTable,
    GroupTable,
    RunTable,
    SessionsTable,
    StepTable,
    TargetTable,
)
from simulator.durations import (
    DurationError,
    Range,
    parse_duration,
    parse_duration_range,
    parse_number_range,
)
from simulator.machines.configuration import (
    KEYS,
    ConfigurationStore,
    InvalidConfigurationValue,
    UnknownConfigurationKey,
)
from simulator.machines.parts import FirmwareSpec, config_overrides
from simulator.machines.workload import SessionPlan
from simulator.ocpp.v16 import Profile, Reason

NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A run name or check name: it may name a file."""
_CHARGER_ID: Final = re.compile(r"[A-Za-z0-9._~:-]+")
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH_EXAMPLE: Final = '"2026-01-01T00:00:00Z"'
_REMOVED_TRANSPORTS: Final = {"wsproto": "its client was removed"}
MAX_SERIAL: Final = 25
"""OCPP chargePointSerialNumber is CiString25."""
MAX_ID_TAG: Final = 20
"""OCPP idTag is CiString20."""
_CONNECTOR_ACTIONS: Final = frozenset(
    {StepAction.PLUG, StepAction.UNPLUG, StepAction.PRESENT_TAG, StepAction.STOP}
)
_REMOVED_ACTIONS: Final = {
    "reconnect": "a charger's link reconnects by itself after a disconnect; to keep it "
                 'offline for a while, use a [[chaos]] table with fault = "partition" and for',
}
STEP_PARAMS: Final[Mapping[StepAction, Mapping[str, Param]]] = {
    StepAction.PLUG: {},
    StepAction.UNPLUG: {},
    StepAction.PRESENT_TAG: {"id_tag": Param(kind=Kind.STR, required=True, max_length=MAX_ID_TAG)},
    StepAction.STOP: {"reason": Param(kind=Kind.STR, default=Reason.LOCAL.value,
                                      choices=tuple(r.value for r in Reason))},
    StepAction.REBOOT: {"hard": Param(kind=Kind.BOOL, default=False)},
    StepAction.FAULT: FAULT_SPECS["connector_fault"].params,
    StepAction.CLEAR_FAULT: {},
    StepAction.DISCONNECT: FAULT_SPECS["disconnect"].params,
}
"""The parameters each ``[[step]]`` action takes: ``fault`` those of the ``connector_fault``
fault, ``disconnect`` those of the ``disconnect`` fault."""


def duration(value: str | float, path: FieldPath, *, positive: bool = False) -> float:
    """Seconds from a written duration; ``positive``: 0 is refused too."""
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        raise Invalid(path, str(error)) from None
    if positive and seconds <= 0:
        raise Invalid(path, f"must be longer than 0s, got {show(value)}")
    return seconds


def _range(value: str | float, path: FieldPath, parse: Callable[[str | float], Range]) -> Range:
    try:
        return parse(value)
    except DurationError as error:
        raise Invalid(path, str(error)) from None


def choose(value: str, choices: Sequence[str], path: FieldPath) -> str:
    """``value`` if it is one of ``choices``, else an error listing them."""
    if value not in choices:
        raise Invalid(path, f"unknown value {show(value)}; {one_of(value, choices)}")
    return value


def render(template: str, path: FieldPath, example: str = "", **fields: object) -> str:
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
    raise Invalid(
        path,
        f"cannot fill in {show(template)}: {problem}; the placeholders are {allowed}{example}",
    )


def _epoch(text: str | None, time: TimeMode) -> dt.datetime | None:
    path: FieldPath = ("run", "epoch")
    if text is None:
        return DEFAULT_VIRTUAL_EPOCH if time is TimeMode.VIRTUAL else None
    if time is not TimeMode.VIRTUAL:
        raise Invalid(
            path, 'applies only to time = "virtual"; set time = "virtual" or remove the epoch'
        )
    match = _RFC3339.fullmatch(text.strip())
    try:
        moment = dt.datetime.fromisoformat(text.strip().upper()) if match else None
    except ValueError:
        moment = None
    if match is None or moment is None:
        raise Invalid(
            path, f"{show(text)} is not an RFC 3339 timestamp; write e.g. {_EPOCH_EXAMPLE}"
        )
    if moment.utcoffset() != dt.timedelta(0):
        raise Invalid(path, f"{show(text)} is not in UTC; write it with Z, e.g. {_EPOCH_EXAMPLE}")
    return moment.astimezone(dt.UTC)


def resolve_run(table: RunTable, default_name: str) -> Run:
    """``[run]``; ``default_name`` (from the file name) when ``name`` is not written."""
    name = table.name if table.name is not None else default_name
    if not NAME.fullmatch(name):
        raise Invalid(
            ("run", "name"),
            f"{show(name)} must be letters, digits, '.', '_' or '-' (it names the ledger file)",
        )
    ledger = render(table.ledger, ("run", "ledger"), name=name)
    lasting = None
    if table.duration is not None:
        lasting = duration(table.duration, ("run", "duration"), positive=True)
    time = TimeMode(choose(table.time, [m.value for m in TimeMode], ("run", "time")))
    return Run(
        name=name,
        seed=table.seed,
        duration=lasting,
        ledger=ledger,
        time=time,
        epoch=_epoch(table.epoch, time),
        validate_csms=table.validate_csms,
    )


def _check_url(url: str) -> None:
    path = ("csms", "url")
    if url == EMBEDDED:
        return
    hint = 'write "embedded" or a URL like "ws://host:9000/ocpp"'
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise Invalid(path, f"{show(url)} is not a valid URL ({error}); {hint}") from None
    if parts.username is not None or parts.password is not None:
        raise Invalid(path, "must not hold a user name or password (it would be recorded with "
                            "the URL): write the password as [csms] password, "
                            'e.g. password = "${SIM_CSMS_PASSWORD}"')
    if parts.scheme not in ("ws", "wss"):
        raise Invalid(path, f'{show(url)} must be "embedded" or start with ws:// or wss://; {hint}')
    if not parts.hostname:
        raise Invalid(path, f"{show(url)} has no host; {hint}")
    if parts.query or parts.fragment:
        raise Invalid(
            path,
            f"{show(url)} must not have a query or fragment (the charger "
            "identity is appended to the path)",
        )


def _transport(name: str) -> str:
    path: FieldPath = ("csms", "transport")
    if name in _REMOVED_TRANSPORTS:
        raise Invalid(
            path,
            f"{show(name)} is no longer available ({_REMOVED_TRANSPORTS[name]}); use "
            f'"{TRANSPORTS[0]}" (the default) or ' + ", ".join(f'"{t}"' for t in TRANSPORTS[1:]),
        )
    return choose(name, TRANSPORTS, path)


def _check_security(security: Security, url: str, base: FieldPath) -> None:
    """A security profile's requirements: a password for 1-2, wss:// for 2-3, the client
    certificate and key for 3."""
    profile = security.security_profile
    if profile in (1, 2) and not security.password:
        raise Invalid(
            (*base, "password"),
            f"security_profile {profile} needs a password; "
            'write password = "${SIM_CSMS_PASSWORD}"',
        )
    if profile >= 2 and not url.startswith("wss://"):
        raise Invalid(("csms", "url"), f"security_profile {profile} needs TLS: use a wss:// URL")
    if profile == 3 and not (security.cert_file and security.key_file):
        missing = "cert_file" if not security.cert_file else "key_file"
        raise Invalid(
            (*base, missing),
            "security_profile 3 (mutual TLS) needs cert_file and "
            "key_file (client certificate and private key)",
        )


def resolve_csms(table: CsmsTable) -> Csms:
    """``[csms]``: the URL, the security profile's requirements, the embedded CSMS's options."""
    _check_url(table.url)
    _check_security(Security(
        security_profile=table.security_profile, password=None if table.password is None
        else Secret(table.password), ca_file=table.ca_file, cert_file=table.cert_file,
        key_file=table.key_file), table.url, ("csms",))
    embedded = table.embedded
    boot_status = choose(embedded.boot_status, BOOT_STATUSES, ("csms", "embedded", "boot_status"))
    heartbeat = duration(
        embedded.heartbeat_interval, ("csms", "embedded", "heartbeat_interval"), positive=True
    )
    poll = None if embedded.poll_interval is None else duration(
        embedded.poll_interval, ("csms", "embedded", "poll_interval"), positive=True
    )
    return Csms(
        url=table.url,
        transport=_transport(table.transport),
        security_profile=table.security_profile,
        password=Secret(table.password) if table.password is not None else None,
        ca_file=table.ca_file,
        cert_file=table.cert_file,
        key_file=table.key_file,
        embedded=EmbeddedCsms(
            boot_status=boot_status,
            heartbeat_interval=heartbeat,
            accepted_tags=embedded.accepted_tags,
            blocked_tags=embedded.blocked_tags,
            poll_interval=poll,
        ),
    )


def _charger_ids(table: GroupTable, index: int) -> tuple[str, ...]:
    path: FieldPath = ("group", index, "id")
    ids = tuple(
        render(table.id, path, ', e.g. "AC-{n:04}"', n=n) for n in range(1, table.count + 1)
    )
    if table.count > 1 and ids[0] == ids[1]:
        raise Invalid(
            path,
            f"{show(table.id)} gives the same id {show(ids[0])} to every "
            'charger; put {n} in it, e.g. "AC-{n:04}"',
        )
    for charger in ids:
        if not _CHARGER_ID.fullmatch(charger) or len(charger) > MAX_CHARGER_ID:
            raise Invalid(
                path,
                f"charger id {show(charger)} must be 1-{MAX_CHARGER_ID} "
                "letters, digits or . _ ~ : - (it is appended to the URL)",
            )
    return ids


def _check_serials(table: GroupTable, index: int, ids: tuple[str, ...]) -> None:
    if table.serial is None:
        return
    path: FieldPath = ("group", index, "serial")
    for n in (1, table.count):
        serial = render(table.serial, path, ', e.g. "SN-{n:06}"', n=n, id=ids[n - 1])
        if len(serial) > MAX_SERIAL:
            raise Invalid(
                path,
                f"serial {show(serial)} is longer than {MAX_SERIAL} characters "
                "(OCPP chargePointSerialNumber)",
            )


def _session_plan(
    table: SessionsTable, index: int, ids: tuple[str, ...], connectors: int
) -> SessionPlan:
    base: FieldPath = ("group", index, "sessions")
    longest = max(ids, key=len)
    for position, template in enumerate(table.id_tags):
        path: FieldPath = (*base, "id_tags", position)
        tag = SessionPlan.tag(template, longest, connectors)
        if len(tag) > MAX_ID_TAG:
            raise Invalid(path, f"{show(template)} gives {show(tag)} for charger "
                                f"{show(longest)}: longer than {MAX_ID_TAG} characters "
                                "(OCPP idTag)")
    return SessionPlan(
        arrivals_per_hour=table.arrivals_per_hour,
        duration=_range(table.duration, (*base, "duration"), parse_duration_range),
        energy_kwh=_range(table.energy_kwh, (*base, "energy_kwh"), parse_number_range),
        id_tags=table.id_tags,
    )


def _firmware(table: FirmwareTable, index: int) -> FirmwareSpec:
    base: FieldPath = ("group", index, "firmware")
    return FirmwareSpec(
        download=duration(table.download, (*base, "download")),
        install=duration(table.install, (*base, "install")),
        upload=duration(table.upload, (*base, "upload")),
        download_failure=table.download_failure,
        install_failure=table.install_failure,
        upload_failure=table.upload_failure,
    )


def _profiles(table: GroupTable, index: int) -> tuple[str, ...] | None:
    if table.profiles is None:
        return None
    known = [p.value for p in Profile]
    for position, name in enumerate(table.profiles):
        choose(name, known, ("group", index, "profiles", position))
    if Profile.CORE.value not in table.profiles:
        raise Invalid(("group", index, "profiles"),
                      'every charger implements "Core"; list it with the others')
    return tuple(dict.fromkeys(table.profiles))


def _group_security(table: GroupTable, index: int, csms: Csms) -> Security | None:
    """The group's security settings: [csms]'s with ``[group.security]``'s overrides."""
    own = table.security
    if own is None:
        return None
    fleet = csms.security
    security = Security(
        security_profile=fleet.security_profile if own.security_profile is None
        else own.security_profile,
        password=fleet.password if own.password is None else Secret(own.password),
        ca_file=own.ca_file or fleet.ca_file,
        cert_file=own.cert_file or fleet.cert_file,
        key_file=own.key_file or fleet.key_file,
    )
    _check_security(security, csms.url, ("group", index, "security"))
    return security


def resolve_groups(tables: tuple[GroupTable, ...], csms: Csms) -> tuple[Group, ...]:
    """``[[group]]`` tables, with names and charger ids unique across the fleet; ``csms`` is
    the resolved ``[csms]`` a group's security settings override."""
    groups: list[Group] = []
    owners: dict[str, int] = {}
    names: dict[str, int] = {}
    for index, table in enumerate(tables):
        if table.name in names:
            raise Invalid(
                ("group", index, "name"),
                f"{show(table.name)} is already the name of group[{names[table.name]}]; "
                "rename one",
            )
        names[table.name] = index
        ids = _charger_ids(table, index)
        for charger in ids:
            owner = owners.setdefault(charger, index)
            if owner != index:
                raise Invalid(
                    ("group", index, "id"),
                    f"charger id {show(charger)} is also made by group[{owner}].id; "
                    "give the groups different prefixes",
                )
        _check_serials(table, index, ids)
        _check_ocpp_config(table.config, table.connectors, index)
        security = _group_security(table, index, csms)
        _check_configured_profile(table.config, security or csms.security, csms.url, index)
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
                sessions=None if table.sessions is None
                else _session_plan(table.sessions, index, ids, table.connectors),
                tags=tuple(dict.fromkeys(table.tags or ())),
                profiles=_profiles(table, index),
                firmware=_firmware(table.firmware, index),
                real_transfers=table.real_transfers,
                security=security,
            )
        )
    return tuple(groups)


def _check_configured_profile(config: Mapping[str, Scalar], security: Security, url: str,
                              index: int) -> None:
    """A ``SecurityProfile`` that ``[group.config]`` sets must be one the group's connection
    can carry (the charger connects with it): TLS for 2-3, a client certificate for 3, a
    password for 1-2 (the group's, or an ``AuthorizationKey`` set beside it)."""
    value = config_overrides(config).get("SecurityProfile")
    if value is None:
        return
    profile = int(str(value).strip())
    path = ("group", index, "config", "SecurityProfile")
    if profile >= 2 and not url.startswith("wss://"):
        raise Invalid(path, f"{profile} needs TLS: use a wss:// URL, or a lower profile")
    if profile == 3 and not (security.cert_file and security.key_file):
        raise Invalid(path, "3 (mutual TLS) needs cert_file and key_file in [group.security] "
                            "or [csms]")
    if profile in (1, 2) and not (security.password or "AuthorizationKey" in config):
        raise Invalid(path, f"{profile} needs a password: set password in [group.security] "
                            "or [csms]")


def _check_ocpp_config(config: Mapping[str, Scalar], connectors: int, index: int) -> None:
    """``[group.config]`` as the charger itself will take it: a known key, a value of its type
    within its range (the same rules that answer a central system's ChangeConfiguration)."""
    try:
        ConfigurationStore(config_overrides(config), number_of_connectors=connectors)
    except UnknownConfigurationKey as error:
        raise Invalid(
            ("group", index, "config", error.key),
            f"unknown OCPP configuration key{suggest(error.key, list(KEYS))}",
        ) from None
    except InvalidConfigurationValue as error:
        raise Invalid(
            ("group", index, "config", error.key),
            f"cannot be {error.value!r}: {error.reason}",
        ) from None


def _target(table: TargetTable, base: FieldPath, groups: tuple[Group, ...]) -> Target:
    try:
        target = check_target(
            ids=table.ids,
            group=table.group,
            fraction=float(table.fraction),
            connector=table.connector,
            tag=table.tag,
        )
    except CatalogError as error:
        raise Invalid((*base, *error.path), error.message) from None
    by_name = {group.name: group for group in groups}
    chosen: list[Group]
    if table.tag is not None:
        chosen = [group for group in groups if table.tag in group.tags]
        if not chosen:
            tags = sorted({tag for group in groups for tag in group.tags})
            known = one_of(table.tag, tags) if tags else "add tags = [...] to a [[group]]"
            raise Invalid((*base, "tag"), f"no group has the tag {show(table.tag)}; {known}")
    elif table.group is not None:
        if table.group not in by_name:
            raise Invalid(
                (*base, "group"),
                f"no group named {show(table.group)}; {one_of(table.group, list(by_name))}",
            )
        chosen = [by_name[table.group]]
    elif table.ids is not None:
        owner = {charger: group for group in groups for charger in group.ids}
        for position, charger in enumerate(table.ids):
            if charger not in owner:
                hint = suggest(charger, list(owner)) if len(owner) <= 10_000 else ""
                raise Invalid(
                    (*base, "ids", position), f"no charger {show(charger)} in the fleet{hint}"
                )
        chosen = list({owner[charger].name: owner[charger] for charger in table.ids}.values())
    else:
        chosen = list(groups)
    if table.connector is not None:
        for group in chosen:
            if table.connector > group.connectors:
                raise Invalid(
                    (*base, "connector"),
                    f"connector {table.connector} does not exist"
                    f" in group {show(group.name)} ({group.connectors} connectors)",
                )
    return target


def resolve_api(table: ApiTable) -> Api:
    """``[api]``: ``listen`` as ``[HOST:]PORT`` (host 127.0.0.1 by default; an IPv6 address in
    brackets), and the token rule: an address other than loopback needs a ``token``."""
    path: FieldPath = ("api", "listen")
    host, sep, port_text = table.listen.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]") if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or (sep and not host):
        raise Invalid(path, f"{show(table.listen)} is not [HOST:]PORT (e.g. 8765, "
                            "127.0.0.1:8765, [::1]:8765); the port is 0-65535")
    api = Api(host=host, port=int(port_text),
              token=None if table.token is None else Secret(table.token), cors=table.cors)
    if table.token is not None and not table.token.strip():
        raise Invalid(("api", "token"), "is empty; give a token or leave it out")
    if table.token is not None and table.token != table.token.strip():
        raise Invalid(("api", "token"), "starts or ends with white space, which no client "
                                        "would send: remove it")
    if not api.loopback and api.token is None:
        raise Invalid(path, f"{host} is not a loopback address, so the API needs a bearer "
                            'token: write [api] token = "${SIM_API_TOKEN}" (or set '
                            "SIM_API__TOKEN), or listen on 127.0.0.1")
    return api


def resolve_step(table: StepTable, index: int, groups: tuple[Group, ...]) -> Step:
    """``[[step]]`` ``index``: its action, target and the action's parameters (checked against
    :data:`STEP_PARAMS`, defaults filled in)."""
    base: FieldPath = ("step", index)
    if table.do in _REMOVED_ACTIONS:
        raise Invalid((*base, "do"), f"{show(table.do)} is no longer an action: "
                                     f"{_REMOVED_ACTIONS[table.do]}")
    action = StepAction(choose(table.do, [a.value for a in StepAction], (*base, "do")))
    target = _target(table.target, (*base, "target"), groups)
    if action in _CONNECTOR_ACTIONS and target.connector == 0:
        raise Invalid((*base, "target", "connector"), f"{action.value} needs a connector >= 1")
    if action is StepAction.PRESENT_TAG:
        tag = table.params.get("id_tag")
        if not isinstance(tag, str) or not 1 <= len(tag) <= 20:
            raise Invalid(
                (*base, "params", "id_tag"),
                "present_tag needs params.id_tag, a string of 1-20 characters",
            )
    try:
        params = check_values(STEP_PARAMS[action], table.params, action.value)
    except CatalogError as error:
        raise Invalid((*base, *error.path), error.message) from None
    return Step(
        at=duration(table.at, (*base, "at")), do=action, target=target, params=params
    )


def resolve_chaos(table: ChaosTable, index: int, groups: tuple[Group, ...]) -> Chaos:
    """``[[chaos]]`` ``index``: a fault of :mod:`simulator.chaos`, its target and schedule."""
    base: FieldPath = ("chaos", index)
    try:
        fault = check_fault(table.fault)
        schedule = check_schedule(
            at=duration(table.at, (*base, "at")),
            every=None if table.every is None else duration(table.every, (*base, "every")),
            probability=float(table.probability),
            lasting=None if table.for_ is None else duration(table.for_, (*base, "for")),
        )
        params = check_params(fault, table.params, schedule.for_)
    except CatalogError as error:
        raise Invalid((*base, *error.path), error.message) from None
    return Chaos(
        fault=fault,
        target=_target(table.target, (*base, "target"), groups),
        at=schedule.at,
        every=schedule.every,
        probability=schedule.probability,
        for_=schedule.for_,
        params=params,
    )


def resolve_expect(table: Mapping[str, Scalar], index: int) -> Expect:
    """``[[expect]]`` ``index``: a check name and its free parameters."""
    check = table.get("check")
    if not isinstance(check, str) or not NAME.fullmatch(check):
        raise Invalid(
            ("expect", index, "check"),
            'is required: the name of a check, e.g. check = "no_lost_transactions"',
        )
    return Expect(check=check, params={k: v for k, v in table.items() if k != "check"})
