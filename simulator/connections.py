"""How chargers connect to their central system: the openers the fleet's links use.

- :func:`group_opener`: a group's chargers over TCP (TLS for ``wss://``) with the credentials in
  force (the group's security settings or ``[csms]``'s, overridden by what a charger was given
  over OCPP); :func:`fleet_settings` the same with the fleet file's settings alone;
- :func:`virtual_opener`: the embedded CSMS over in-memory byte streams (virtual time);
- :func:`tls_context`, :func:`tls_problem`: the TLS files checked before a run starts;
- :func:`chaos_states`, :func:`with_chaos`: each charger's transport chaos stream, put between
  its socket and its WebSocket client.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import trio

from simulator.actors.chaos_stream import TransportChaos
from simulator.actors.link import CredentialOpener
from simulator.actors.security import GroupSecurity, SecuritySettings, credential_opener
from simulator.actors.security import tls_context as security_tls_context
from simulator.actors.streams import memory_connector
from simulator.actors.transport import (
    Transport,
    WebSocketClient,
    open_transport,
    trio_websocket_client,
)
from simulator.actors.websockets_transport import websockets_client
from simulator.config import Fleet as FleetFile
from simulator.config import Group
from simulator.config.model import Security
from simulator.csms import CsmsServer
from simulator.machines.effects import Credentials
from simulator.ocpp.plugin import ProtocolPlugin
from simulator.ocpp.v16 import PLUGIN

TransportFactory = Callable[[str, str], AbstractAsyncContextManager[Transport]]
"""``(base_url, identity)`` → an async context manager yielding a connected transport."""
StreamWrap = Callable[[str, trio.abc.Stream], trio.abc.Stream]
"""``(identity, stream)`` → the stream a charger's WebSocket client talks over: the seam where
the chaos engine puts its wrappers (``simulator.actors.streams.StreamWrapper``)."""


def tls_context(fleet: FleetFile) -> ssl.SSLContext | None:
    """The TLS client context of ``[csms]``'s settings for a wss:// CSMS: the system trust
    store or ``ca_file``, and the client certificate of security profile 3. Raises
    ``OSError``/``ssl.SSLError`` for files that cannot be read or used."""
    if not fleet.csms.url.startswith("wss://"):
        return None
    return security_tls_context(security_settings(fleet.csms.security))


def tls_problem(fleet: FleetFile) -> str | None:
    """One line naming the fleet file and the field if the TLS files of ``[csms]`` or of a
    group's ``[group.security]`` cannot be used (a wss:// CSMS only), else None."""
    if not fleet.csms.url.startswith("wss://"):
        return None
    tables = [("csms", fleet.csms.security)] + [
        (f"group {group.name!r} security", group.security)
        for group in fleet.groups if group.security is not None
    ]
    checked: set[SecuritySettings] = set()
    for where, security in tables:
        settings = security_settings(security)
        if settings in checked:
            continue
        checked.add(settings)
        try:
            security_tls_context(settings)
        except (OSError, ssl.SSLError) as exc:
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return f"{fleet.source}: {where}: ca_file / cert_file / key_file: {cause}; " \
                "check the TLS files"
    return None


def security_settings(security: Security) -> SecuritySettings:
    """The transport's view of a fleet file's security settings."""
    return SecuritySettings(
        security_profile=security.security_profile,
        password=None if security.password is None else str(security.password),
        ca_file=security.ca_file, cert_file=security.cert_file, key_file=security.key_file,
    )


def group_opener(
    fleet: FleetFile,
    group: Group,
    base_url: str,
    *,
    plugin: ProtocolPlugin = PLUGIN,
    wrap: StreamWrap | None = None,
) -> CredentialOpener:
    """Connect ``group``'s chargers to ``base_url`` with the credentials in force
    (:class:`~simulator.actors.security.GroupSecurity`: the group's security settings, or
    ``[csms]``'s, overridden by what the charger was given over OCPP). Raises
    ``OSError``/``ssl.SSLError`` for the group's unusable TLS files."""
    security = GroupSecurity(security_settings(group.security or fleet.csms.security),
                             tls=base_url.startswith("wss://"))
    return credential_opener(base_url, security, plugin=plugin, client=websocket_client(fleet),
                             wrap=wrap)


def fleet_settings(connect: CredentialOpener) -> Callable[[str], AbstractAsyncContextManager[
        Transport]]:
    """``connect`` with the fleet file's settings (empty :class:`Credentials`: the group's
    profile, password and client certificate): how a charger connects before its machine has
    said otherwise."""
    return functools.partial(_with_fleet_settings, connect)


def _with_fleet_settings(
    connect: CredentialOpener, identity: str
) -> AbstractAsyncContextManager[Transport]:
    return connect(identity, Credentials())


def websocket_client(fleet: FleetFile) -> WebSocketClient:
    """The WebSocket client ``[csms] transport`` names. Raises ``ValueError`` for a name this
    version does not offer (the fleet file's check refuses it first)."""
    clients: dict[str, WebSocketClient] = {
        "trio-websocket": trio_websocket_client, "websockets": websockets_client,
    }
    client = clients.get(fleet.csms.transport)
    if client is None:
        raise ValueError(f"csms.transport: {fleet.csms.transport!r} is not a WebSocket client "
                         f"this version offers; use one of {', '.join(map(repr, clients))}")
    return client


def virtual_opener(
    server: CsmsServer,
    *,
    client: WebSocketClient = trio_websocket_client,
    plugin: ProtocolPlugin = PLUGIN,
    wrap: StreamWrap | None = None,
) -> TransportFactory:
    """Connect chargers to ``server`` over in-memory byte streams: the same client, handshake
    (subprotocol check included) and frames as on a socket, under whatever clock the run has;
    ``wrap`` goes between each stream and its WebSocket client."""
    connect = memory_connector(server.serve_stream)

    def opener(url: str, identity: str) -> AbstractAsyncContextManager[Transport]:
        return open_transport(url, identity, plugin=plugin, client=client,
                              connect_stream=connect, wrap=_for(wrap, identity))

    return opener


def _for(
    wrap: StreamWrap | None, identity: str
) -> Callable[[trio.abc.Stream], trio.abc.Stream] | None:
    return None if wrap is None else functools.partial(wrap, identity)


def chaos_states(seed: int) -> Callable[[str], TransportChaos]:
    """``identity`` → that charger's transport chaos state (made on first use, then the same)."""
    states: dict[str, TransportChaos] = {}

    def state(identity: str) -> TransportChaos:
        found = states.get(identity)
        if found is None:
            found = states[identity] = TransportChaos(seed, identity)
        return found

    return state


def with_chaos(chaos: Callable[[str], TransportChaos], wrap: StreamWrap | None) -> StreamWrap:
    """``wrap``, then the charger's chaos stream over it, closest to the WebSocket client: a
    recording ``wrap`` sees the bytes the faults let through."""

    def wrapped(identity: str, stream: trio.abc.Stream) -> trio.abc.Stream:
        return chaos(identity).wrap(stream if wrap is None else wrap(identity, stream))

    return wrapped
