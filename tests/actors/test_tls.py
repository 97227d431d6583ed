"""wss:// with the TLS files of the fleet file: every WebSocket client verifies the CSMS's
certificate against ``ca_file`` (or the system store), on 127.0.0.1 with a throwaway CA from
trustme."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import random
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trustme
from trio_websocket import (
    ConnectionClosed,
    WebSocketRequest,
    serve_websocket,
    wrap_server_stream,
)

from simulator.actors.charger import ChargerControl, ChargerEnv, run_charger
from simulator.actors.link import Backoff
from simulator.actors.security import GroupSecurity, SecuritySettings, credential_opener
from simulator.actors.transport import (
    ConnectError,
    Transport,
    WebSocketClient,
    trio_websocket_client,
)
from simulator.config import ConfigError, parse_fleet
from simulator.connections import tls_context, tls_problem
from simulator.csms.options import CsmsOptions
from simulator.csms.server import CsmsServer, new_central_system
from simulator.events import Connected, ConnectFailed, Disconnected, FrameOut, Note
from simulator.machines.charger import SUPPORTED_PROFILES, ChargerMachine, ChargerSpec
from simulator.machines.parts import SecuritySpec
from simulator.ocpp.v16 import PLUGIN, ChangeConfigurationRequest, Profile
from simulator.runtime import charger_specs
from tests.actors.servers import CLIENTS, SUBPROTOCOL, opener_for
from tests.actors.test_charger_actor import Recorder
from tests.actors.test_security_profiles import CONNECTION_EVENTS, serve_tls
from tests.machines.pair import MachinePair


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=[SUBPROTOCOL])
async def tls_server(authority: trustme.CA, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An echoing WebSocket server behind TLS for 127.0.0.1 that selects ``request.param`` as
    the subprotocol; yields its wss:// URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    selected: str | None = request.param

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=selected)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send_message(await ws.get_message())

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, context)
        yield f"wss://127.0.0.1:{server.port}/ocpp"
        nursery.cancel_scope.cancel()


def fleet_context(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    ca = f'ca_file = "{ca_file}"\n' if ca_file is not None else ""
    fleet = parse_fleet(
        f'[csms]\nurl = "{url}"\n{ca}\n[[group]]\nname = "g"\nid = "CP-{{n}}"\n'
        'vendor = "Acme"\nmodel = "AC22"\n'
    )
    return tls_context(fleet)


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_csms_certificate_is_verified_against_ca_file(
    tls_server: str, authority: trustme.CA, tmp_path: Path, client: WebSocketClient
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = fleet_context(tls_server, ca_file)
    assert context is not None
    with trio.fail_after(10):
        async with opener_for(client)(tls_server, "CP-1", ssl_context=context) as transport:
            await transport.send('[2,"1","Heartbeat",{}]')
            assert await transport.receive() == '[2,"1","Heartbeat",{}]'
            assert transport.subprotocol == SUBPROTOCOL


@pytest.mark.parametrize("client", CLIENTS)
async def test_an_unknown_authority_is_refused_with_one_line(
    tls_server: str, client: WebSocketClient
) -> None:
    context = fleet_context(tls_server, None)  # the system store does not know trustme's CA
    with trio.fail_after(10), pytest.raises(ConnectError) as refused:
        async with opener_for(client)(tls_server, "CP-1", ssl_context=context, connect_timeout=3):
            pass
    message = str(refused.value)
    assert message.startswith(tls_server) and "\n" not in message
    assert "certificate" in message.lower()


@pytest.mark.parametrize("tls_server", [None], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
async def test_a_server_without_the_subprotocol_is_refused_over_tls_too(
    tls_server: str, authority: trustme.CA, tmp_path: Path, client: WebSocketClient
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    with trio.fail_after(10), pytest.raises(ConnectError, match="did not select subprotocol"):
        context = fleet_context(tls_server, ca_file)
        async with opener_for(client)(tls_server, "CP-1", ssl_context=context):
            pass


def test_plain_ws_needs_no_tls_context() -> None:
    assert fleet_context("ws://127.0.0.1:9000/ocpp", None) is None


# --- a charger against the reference CSMS: security profiles end to end -----------------------

PASSWORD = "fleet-password-0123"
KEY = "key-set-over-ocpp-4567"


class GuardedCsms:
    """The reference CSMS behind a door that checks HTTP Basic against ``password`` (None: no
    check) and records each handshake's ``Authorization`` header; :meth:`drop` ends the
    connections open now (the charger reconnects)."""

    def __init__(self, password: str | None) -> None:
        self.server = CsmsServer(new_central_system(CsmsOptions(heartbeat_interval=300)))
        self.password = password
        self.authorizations: list[bytes | None] = []
        self._open: list[trio.CancelScope] = []

    async def handle(self, request: WebSocketRequest) -> None:
        header = dict(request.headers).get(b"authorization")
        self.authorizations.append(header)
        if self.password is not None and header != basic_header("CP-1", self.password):
            await request.reject(401)
            return
        with trio.CancelScope() as scope:
            self._open.append(scope)
            await self.server.handle_request(request)

    def drop(self) -> None:
        for scope in self._open:
            scope.cancel()

    def passwords(self) -> list[str | None]:
        return [None if header is None
                else base64.b64decode(header.split(b" ", 1)[1]).decode().split(":", 1)[1]
                for header in self.authorizations]

    async def change(self, key: str, value: str) -> str:
        outcome = await self.server.call("CP-1", ChangeConfigurationRequest(key=key, value=value))
        assert outcome.ok, outcome
        return str(outcome.response.status)

    def received(self, action: str) -> list[dict[str, Any]]:
        return [dict(frame) for who, frame_action, frame in self._frames()
                if who == "CP-1" and frame_action == action]

    def _frames(self) -> list[tuple[str, str, dict[str, Any]]]:
        return []  # (replaced per test when needed)


def basic_header(identity: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{identity}:{password}".encode())


@contextlib.asynccontextmanager
async def guarded(csms: GuardedCsms, context: ssl.SSLContext | None) -> AsyncIterator[str]:
    """Serve ``csms`` on 127.0.0.1 (TLS with ``context``, alerts sent); yields the URL."""

    async def websocket(stream: trio.abc.Stream) -> None:
        async with trio.open_nursery() as nursery:
            request = await wrap_server_stream(nursery, stream)
            await csms.handle(request)
            nursery.cancel_scope.cancel()

    async with serve_tls(context, websocket) as url:
        yield url


@contextlib.asynccontextmanager
async def charger(url: str, settings: SecuritySettings, *, certificate: bool = False,
                  ) -> AsyncIterator[tuple[ChargerControl, Recorder]]:
    """One charger of a group with ``settings`` connecting to ``url`` (short backoff), as the
    runtime builds it; yields its control and what it published."""
    recorder = Recorder()
    control = recorder.control()
    tls = url.startswith("wss://")
    spec = ChargerSpec(identity="CP-1", vendor="Acme", model="AC22",
                       config={"SecurityProfile": settings.security_profile},
                       security=SecuritySpec(tls=tls, client_certificate=certificate))
    opener = credential_opener(url, GroupSecurity(settings, tls=tls), plugin=PLUGIN,
                               client=trio_websocket_client)
    env = ChargerEnv(spec=spec, seed=7, url=url, open_transport=unused_opener,
                     connect=opener, publish=recorder.publish, persist=recorder.persist,
                     wall_epoch=1_767_225_600.0, backoff=Backoff(base=0.05, cap=0.2))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_charger, env, control)
        yield control, recorder
        nursery.cancel_scope.cancel()


def unused_opener(identity: str) -> contextlib.AbstractAsyncContextManager[Transport]:
    raise AssertionError("the charger connects through env.connect")


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds: polled, as the charger runs on real sockets and real
    time (its events come from its own tasks); the test's ``fail_after`` bounds it."""
    while not condition():  # noqa: ASYNC110 (a condition over a recorder, not an event)
        await trio.sleep(0.01)


def security_events(recorder: Recorder) -> list[str]:
    """The security events of the connection (not those of every boot)."""
    return [str(note.data["type"]) for note in recorder.of(Note)
            if note.what == "security_event" and note.data["type"] in CONNECTION_EVENTS]


def connections(recorder: Recorder) -> int:
    return len(recorder.of(Connected))


async def test_the_wrong_ca_is_refused_with_a_security_event_and_a_clear_line(
    authority: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)  # a CA the charger ignores
    csms = GuardedCsms(PASSWORD)
    settings = SecuritySettings(security_profile=2, password=PASSWORD, ca_file=str(ca_file))
    with trio.fail_after(20):
        async with guarded(csms, context) as url, charger(url, settings) as (_, recorder):
            await until(lambda: len(recorder.of(ConnectFailed)) >= 3)
            failed = recorder.of(ConnectFailed)
            assert [f.attempt for f in failed[:3]] == [1, 2, 3]
            assert all(f.error.endswith(": TLS: certificate verify failed: unable to get "
                                        "local issuer certificate") for f in failed)
            assert security_events(recorder) == ["InvalidCentralSystemCertificate"]
            note = next(n for n in recorder.of(Note) if n.what == "security_event"
                        and n.data["type"] == "InvalidCentralSystemCertificate")
            assert note.data["tech_info"] == ("TLS: certificate verify failed: unable to get "
                                              "local issuer certificate")
            assert csms.authorizations == []  # never got as far as HTTP
            authority.issue_cert("127.0.0.1").configure_cert(context)  # the right one now
            await until(lambda: connections(recorder) == 1)
            if Profile.SECURITY in SUPPORTED_PROFILES:  # reported once connected
                await until(lambda: bool(notifications(recorder)))
                assert notifications(recorder) == ["InvalidCentralSystemCertificate"]
    assert security_events(recorder) == ["InvalidCentralSystemCertificate"]


def notifications(recorder: Recorder) -> list[str]:
    """The types of the SecurityEventNotifications the charger sent."""
    sent = [json.loads(frame.raw)[3]["type"] for frame in recorder.of(FrameOut)
            if frame.action == "SecurityEventNotification" and frame.message_type == 2]
    return [kind for kind in sent if kind in CONNECTION_EVENTS]


@pytest.mark.parametrize("tls", [False, True], ids=["profile 1", "profile 2"])
async def test_a_wrong_password_is_retried_with_backoff_and_each_attempt_logged(
    authority: trustme.CA, tmp_path: Path, tls: bool
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = None
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(context)
    csms = GuardedCsms(PASSWORD)
    wrong = "wrong-password-0000"
    settings = SecuritySettings(security_profile=2 if tls else 1, password=wrong,
                                ca_file=str(ca_file))
    with trio.fail_after(20):
        async with guarded(csms, context) as url, charger(url, settings) as (_, recorder):
            await until(lambda: len(recorder.of(ConnectFailed)) >= 4)
    failed = recorder.of(ConnectFailed)
    assert [f.attempt for f in failed[:4]] == [1, 2, 3, 4]
    assert all(f.error.endswith("handshake refused with HTTP 401") for f in failed)
    assert all(0 <= f.retry_in <= min(0.2, 0.05 * 2 ** f.attempt) for f in failed)
    assert all(later.t - earlier.t >= earlier.retry_in - 0.002  # (retry_in: rounded)
               for earlier, later in itertools.pairwise(failed))
    assert set(csms.passwords()) == {wrong}
    assert security_events(recorder) == ["FailedToAuthenticateAtCentralSystem"]
    assert connections(recorder) == 0
    assert wrong not in repr(recorder.events)


async def test_an_authorization_key_set_over_ocpp_is_the_next_password() -> None:
    csms = GuardedCsms(PASSWORD)
    settings = SecuritySettings(security_profile=1, password=PASSWORD)
    with trio.fail_after(20):
        async with guarded(csms, None) as url, charger(url, settings) as (_, recorder):
            await until(lambda: connections(recorder) == 1)
            assert await csms.change("AuthorizationKey", KEY) == "Accepted"
            csms.password = KEY  # the CSMS stores it too
            csms.drop()
            await until(lambda: connections(recorder) == 2)
    assert csms.passwords() == [PASSWORD, KEY]
    assert security_events(recorder) == ["ReconfigurationOfSecurityParameters"]
    assert KEY not in repr(recorder.events)


async def test_a_raised_security_profile_reconnects_with_it_and_lowering_is_rejected(
    authority: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    clients = trustme.CA()
    leaf = clients.issue_cert("CP-1")
    cert, key = tmp_path / "cp.pem", tmp_path / "cp.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    clients.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED  # (profile 2 offers the certificate too)
    csms = GuardedCsms(None)
    settings = SecuritySettings(security_profile=2, password=PASSWORD, ca_file=str(ca_file),
                                cert_file=str(cert), key_file=str(key))
    with trio.fail_after(20):
        async with guarded(csms, context) as url, \
                charger(url, settings, certificate=True) as (control, recorder):
            await until(lambda: connections(recorder) == 1)
            assert await csms.change("AuthorizationKey", KEY) == "Accepted"
            await until(lambda: connections(recorder) == 2)  # back with the new password
            assert await csms.change("SecurityProfile", "3") == "Accepted"
            await until(lambda: connections(recorder) == 3)
            assert await csms.change("SecurityProfile", "2") == "Rejected"
            assert control.credentials is not None
            assert control.credentials.security_profile == 3
    assert csms.passwords() == [PASSWORD, KEY, None]  # profile 3: the certificate, no Basic
    assert len(recorder.of(Disconnected)) == 2
    assert security_events(recorder) == ["ReconfigurationOfSecurityParameters"] * 2


async def test_a_certificate_given_by_use_credentials_is_the_next_connections(
    authority: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    stale = trustme.CA().issue_cert("CP-1")  # the group's: a CA the CSMS does not trust
    cert, key = tmp_path / "cp.pem", tmp_path / "cp.key"
    stale.cert_chain_pems[0].write_to_path(str(cert))
    stale.private_key_pem.write_to_path(str(key))
    clients = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    clients.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    csms = GuardedCsms(None)
    settings = SecuritySettings(security_profile=3, ca_file=str(ca_file), cert_file=str(cert),
                                key_file=str(key))
    signed = clients.issue_cert("CP-1")
    with trio.fail_after(20):
        async with guarded(csms, context) as url, \
                charger(url, settings, certificate=True) as (control, recorder):
            await until(lambda: len(recorder.of(ConnectFailed)) >= 2)
            assert security_events(recorder) == ["FailedToAuthenticateAtCentralSystem"]
            assert control.credentials is not None
            # What the actor does with UseCredentials once CertificateSigned installed a chain:
            control.credentials = msgspec.structs.replace(
                control.credentials,
                certificate_chain="".join(b.bytes().decode() for b in signed.cert_chain_pems),
                private_key=signed.private_key_pem.bytes().decode(),
            )
            await until(lambda: connections(recorder) == 1)


# --- the fleet file: each group's security settings --------------------------------------------


def security_fleet(tmp_path: Path, ca_file: Path | str) -> str:
    cert, key = tmp_path / "cp.pem", tmp_path / "cp.key"
    leaf = trustme.CA().issue_cert("CP")
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return f"""
[csms]
url = "wss://127.0.0.1:9/ocpp"
security_profile = 2
password = "{PASSWORD}"
ca_file = "{ca_file}"

[[group]]
name = "basic"
id = "B-{{n}}"
vendor = "Acme"
model = "AC22"

[[group]]
name = "mutual"
id = "M-{{n}}"
vendor = "Acme"
model = "AC22"
[group.security]
security_profile = 3
cert_file = "{cert}"
key_file = "{key}"

[[group]]
name = "configured"
id = "C-{{n}}"
vendor = "Acme"
model = "AC22"
[group.config]
SecurityProfile = 1
"""


def test_each_charger_starts_at_its_groups_security_profile(
    authority: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    fleet = parse_fleet(security_fleet(tmp_path, ca_file))
    specs = {group.name: charger_specs(group, fleet.csms)[0] for group in fleet.groups}
    assert {name: spec.config.get("SecurityProfile") for name, spec in specs.items()} == \
        {"basic": 2, "mutual": 3, "configured": 1}  # ([group.config] has the last word)
    assert specs["basic"].security == SecuritySpec(tls=True, client_certificate=False)
    assert specs["mutual"].security == SecuritySpec(tls=True, client_certificate=True)
    machine = ChargerMachine(specs["mutual"], rng=random.Random(1), new_id=lambda: "id",
                             wall_epoch=0.0, now=0.0)
    assert machine.credentials().security_profile == 3  # what GetConfiguration reports
    assert PASSWORD not in repr(specs)
    assert tls_problem(fleet) is None
    # The fleet's password is the charger's AuthorizationKey: a raise from 1 to 2 needs no key
    # set over OCPP first.
    configured = specs["configured"]
    assert configured.config["AuthorizationKey"] == PASSWORD
    pair = MachinePair(config=dict(configured.config), security=configured.security)
    change = pair.cs_call("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"})
    assert change.status == "Accepted"
    assert pair.machine.credentials().authorization_key == PASSWORD


def test_a_short_fleet_password_is_sent_but_is_no_authorization_key(tmp_path: Path) -> None:
    fleet = parse_fleet('[csms]\nurl = "ws://127.0.0.1:9/ocpp"\nsecurity_profile = 1\n'
                        'password = "short"\n[[group]]\nname = "g"\nid = "G-{n}"\n'
                        'vendor = "Acme"\nmodel = "AC22"\n')
    spec = charger_specs(fleet.groups[0], fleet.csms)[0]
    assert "AuthorizationKey" not in spec.config and spec.config["SecurityProfile"] == 1
    security = GroupSecurity(SecuritySettings(security_profile=1, password="short"), tls=False)
    assert security.connection(None).password == "short"


def test_a_groups_unusable_tls_file_is_one_line_naming_the_group(
    authority: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    text = security_fleet(tmp_path, ca_file).replace(
        'security_profile = 3\n', f'security_profile = 3\nca_file = "{tmp_path}/none.pem"\n')
    problem = tls_problem(parse_fleet(text))
    assert problem is not None and "\n" not in problem
    assert "group 'mutual' security" in problem and "No such file" in problem


@pytest.mark.parametrize(("csms", "config", "expected"), [
    ('url = "ws://h/ocpp"', "SecurityProfile = 2",
     "group[0].config.SecurityProfile: 2 needs TLS: use a wss:// URL"),
    ('url = "wss://h/ocpp"\npassword = "fleet-password-0123"', "SecurityProfile = 3",
     "group[0].config.SecurityProfile: 3 (mutual TLS) needs cert_file and key_file"),
    ('url = "ws://h/ocpp"', "SecurityProfile = 1",
     "group[0].config.SecurityProfile: 1 needs a password"),
])
def test_a_configured_security_profile_the_connection_cannot_carry_is_refused(
    csms: str, config: str, expected: str
) -> None:
    text = (f"[csms]\n{csms}\n[[group]]\nname = \"g\"\nid = \"G-{{n}}\"\nvendor = \"Acme\"\n"
            f"model = \"AC22\"\n[group.config]\n{config}\n")
    with pytest.raises(ConfigError) as refused:
        parse_fleet(text)
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_configured_security_profile_with_what_it_needs_is_taken() -> None:
    text = ('[csms]\nurl = "ws://h/ocpp"\n[[group]]\nname = "g"\nid = "G-{n}"\n'
            'vendor = "Acme"\nmodel = "AC22"\n[group.config]\nSecurityProfile = 1\n'
            'AuthorizationKey = "key-in-the-config-0123"\n')
    fleet = parse_fleet(text)
    assert "key-in-the-config-0123" not in fleet.text  # (redacted for the ledger)
    spec = charger_specs(fleet.groups[0], fleet.csms)[0]
    machine = ChargerMachine(spec, rng=random.Random(1), new_id=lambda: "id", wall_epoch=0.0,
                             now=0.0)
    credentials = machine.credentials()
    assert (credentials.security_profile, credentials.authorization_key) == \
        (1, "key-in-the-config-0123")
