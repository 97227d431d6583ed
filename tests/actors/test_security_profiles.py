"""Security profiles 1-3 at the connection, against servers on 127.0.0.1 with trustme
certificates: the credentials a connection uses (:class:`GroupSecurity`), what a refusal means
for security (``ConnectError.failure``: the server's certificate, the TLS version or suite, the
charger's credentials) and the one line that names it."""

from __future__ import annotations

import base64
import contextlib
import functools
import random
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import pytest
import trio
import trustme
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from simulator.actors.security import (
    GroupSecurity,
    SecuritySettings,
    credential_opener,
    tls_context,
)
from simulator.actors.transport import ConnectError, WebSocketClient, trio_websocket_client
from simulator.events import Note
from simulator.machines.charger import ConnectFailure
from simulator.machines.context import ChargerContext
from simulator.machines.effects import Credentials, Effect, UseCredentials
from simulator.machines.parts import SecuritySpec
from simulator.ocpp.v16 import PLUGIN, Profile
from tests.actors.servers import CLIENTS, SUBPROTOCOL, opener_for
from tests.machines.pair import DEFER, FakeCentralSystem, MachinePair

PASSWORD = "fleet-password-0123"
KEY = "key-set-over-ocpp-4567"

Handler = Callable[[WebSocketRequest], Awaitable[None]]


class Seen:
    """What a test server saw of each handshake: the ``Authorization`` header (None: none)."""

    def __init__(self) -> None:
        self.authorizations: list[bytes | None] = []

    def passwords(self) -> list[str | None]:
        """The Basic passwords of the handshakes, in order (None: no header)."""
        found: list[str | None] = []
        for header in self.authorizations:
            if header is None:
                found.append(None)
                continue
            user_password = base64.b64decode(header.split(b" ", 1)[1]).decode()
            found.append(user_password.split(":", 1)[1])
        return found


def echo(seen: Seen, *, password: str | None = None) -> Handler:
    """A handler that records the handshake, refuses a wrong password (401) when ``password``
    is set, else accepts with the OCPP subprotocol and echoes."""

    async def handle(request: WebSocketRequest) -> None:
        header = dict(request.headers).get(b"authorization")
        seen.authorizations.append(header)
        if password is not None and header != basic(password):
            await request.reject(401)
            return
        ws = await request.accept(subprotocol=SUBPROTOCOL)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send_message(await ws.get_message())

    return handle


def basic(password: str, identity: str = "CP-1") -> bytes:
    return b"Basic " + base64.b64encode(f"{identity}:{password}".encode())


@contextlib.asynccontextmanager
async def serving(handler: Handler, context: ssl.SSLContext | None) -> AsyncIterator[str]:
    """Serve ``handler`` on 127.0.0.1 (TLS with ``context``); yields the base URL."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, context)
        scheme = "wss" if context is not None else "ws"
        yield f"{scheme}://127.0.0.1:{server.port}/ocpp"
        nursery.cancel_scope.cancel()


class ServerTLS(trio.abc.Stream):
    """The server's end of a TLS connection over ``tcp``, on ``ssl.SSLObject``.

    Unlike ``trio.SSLStream``, which drops what OpenSSL has to send once a handshake failed,
    :meth:`handshake` sends the alert that says why before it raises, as real servers do:
    under TLS 1.3 a client learns that its certificate was refused only from that alert."""

    def __init__(self, tcp: trio.abc.Stream, context: ssl.SSLContext) -> None:
        self._tcp = tcp
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._sending = trio.Lock()

    async def _flush(self) -> None:
        async with self._sending:
            pending = self._outgoing.read()
            if pending:
                await self._tcp.send_all(pending)

    async def _fill(self) -> bool:
        data = await self._tcp.receive_some(65536)
        if data:
            self._incoming.write(data)
        return bool(data)

    async def handshake(self) -> None:
        """The TLS handshake; raises ``ssl.SSLError`` (alert sent) or ``EOFError``."""
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            finally:
                with contextlib.suppress(trio.BrokenResourceError):
                    await self._flush()
            if not await self._fill():
                raise EOFError("the client left during the handshake")
        await self._flush()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._tls.write(bytes(data))
        await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self._tcp.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            try:
                return self._tls.read(max_bytes or 65536)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            await self._flush()
            if not await self._fill():
                return b""

    async def aclose(self) -> None:
        await self._tcp.aclose()


StreamHandler = Callable[[trio.abc.Stream], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve_tls(context: ssl.SSLContext | None, handle: StreamHandler | None = None
                    ) -> AsyncIterator[str]:
    """Serve on 127.0.0.1 over :class:`ServerTLS` with ``context`` (None: plain TCP); each
    stream whose handshake passed goes to ``handle`` (None: closed at once). Yields the
    base URL."""

    async def accept(tcp: trio.SocketStream) -> None:
        async with tcp:
            stream: trio.abc.Stream = tcp
            if context is not None:
                stream = ServerTLS(tcp, context)
                try:
                    await stream.handshake()
                except (ssl.SSLError, EOFError, trio.BrokenResourceError):
                    return
            if handle is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await handle(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, accept, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"{'wss' if context is not None else 'ws'}://127.0.0.1:{port}/ocpp"
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def handshaking(context: ssl.SSLContext) -> AsyncIterator[str]:
    """A TLS server that only does the handshake (alerts sent), then closes."""
    async with serve_tls(context) as url:
        yield url


def server_context(authority: trustme.CA, *, host: str = "127.0.0.1",
                   clients: trustme.CA | None = None) -> ssl.SSLContext:
    """A server context with a certificate for ``host``; with ``clients``, a client
    certificate signed by that CA is required (mutual TLS, profile 3)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(host).configure_cert(context)
    if clients is not None:
        clients.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(authority: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


def client_files(authority: trustme.CA, tmp_path: Path, name: str = "client"
                 ) -> tuple[str, str]:
    """A client certificate (``CP-1``) signed by ``authority``, as cert and key files."""
    leaf = authority.issue_cert("CP-1")
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


def installed(authority: trustme.CA) -> tuple[str, str]:
    """A client certificate chain and key as CertificateSigned would install them (PEM)."""
    leaf = authority.issue_cert("CP-1")
    chain = "".join(blob.bytes().decode() for blob in leaf.cert_chain_pems)
    return chain, leaf.private_key_pem.bytes().decode()


async def connect(url: str, settings: SecuritySettings, credentials: Credentials | None = None,
                  *, client: WebSocketClient) -> None:
    """Open one connection with ``settings`` and ``credentials``; one message goes through."""
    security = GroupSecurity(settings, tls=url.startswith("wss://"))
    opener = credential_opener(url, security, plugin=PLUGIN, client=client)
    in_force = credentials or Credentials(security_profile=settings.security_profile)
    async with opener("CP-1", in_force) as transport:
        await transport.send('[2,"1","Heartbeat",{}]')
        assert await transport.receive() == '[2,"1","Heartbeat",{}]'


async def refused(url: str, settings: SecuritySettings, credentials: Credentials | None = None,
                  *, client: WebSocketClient) -> ConnectError:
    with pytest.raises(ConnectError) as caught:
        await connect(url, settings, credentials, client=client)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(url)
    assert PASSWORD not in message and KEY not in message
    return caught.value


# --- what a connection uses -------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "key", "expected"), [
    (0, None, PASSWORD),  # (a password given under profile 0 is sent, as before profiles)
    (1, None, PASSWORD),
    (2, None, PASSWORD),
    (1, KEY, KEY),  # the AuthorizationKey set over OCPP wins over the fleet file's
    (2, KEY, KEY),
    (3, None, None),  # profile 3 proves itself with its certificate only
    (3, KEY, None),
])
def test_the_password_of_a_connection(profile: int, key: str | None, expected: str | None
                                      ) -> None:
    security = GroupSecurity(SecuritySettings(security_profile=1, password=PASSWORD), tls=False)
    credentials = Credentials(security_profile=profile, authorization_key=key)
    assert security.connection(credentials).password == expected
    assert security.connection(None).password == PASSWORD  # the group's own profile, 1


def test_settings_and_connections_hide_their_secrets() -> None:
    settings = SecuritySettings(security_profile=1, password=PASSWORD)
    connection = GroupSecurity(settings, tls=False).connection(None)
    assert PASSWORD not in repr(settings) and PASSWORD not in repr(connection)
    assert KEY not in repr(Credentials(security_profile=1, authorization_key=KEY))


def test_an_installed_certificate_gets_a_context_of_its_own_once(
    authority: trustme.CA, ca_file: str
) -> None:
    security = GroupSecurity(SecuritySettings(security_profile=3, ca_file=ca_file), tls=True)
    chain, key = installed(trustme.CA())
    credentials = Credentials(security_profile=3, certificate_chain=chain, private_key=key)
    first = security.connection(credentials).ssl_context
    assert first is not None and first is not security.connection(None).ssl_context
    assert security.connection(credentials).ssl_context is first


def test_an_installed_certificate_is_loaded_without_leaving_a_file(
    ca_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, key = installed(trustme.CA())
    settings = SecuritySettings(security_profile=3, ca_file=ca_file)
    tls_context(settings, chain=chain, key=key)  # (an anonymous memory file on Linux)
    monkeypatch.delattr("os.memfd_create", raising=False)  # the temporary-file way
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # (read TMPDIR again)
    tls_context(settings, chain=chain, key=key)
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_broken_installed_certificate_is_a_connect_error_naming_no_secret(
    ca_file: str,
) -> None:
    chain, _ = installed(trustme.CA())
    security = GroupSecurity(SecuritySettings(security_profile=3, ca_file=ca_file), tls=True)
    opener = credential_opener("wss://127.0.0.1:9/ocpp", security, plugin=PLUGIN,
                               client=trio_websocket_client)
    broken = Credentials(security_profile=3, certificate_chain=chain, private_key=KEY)
    with trio.fail_after(10), pytest.raises(ConnectError) as caught:
        async with opener("CP-1", broken):
            pass
    assert "client certificate installed over OCPP cannot be used" in str(caught.value)
    assert KEY not in str(caught.value) and "BEGIN" not in str(caught.value)


# --- profile 2: TLS and HTTP Basic ------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
async def test_profile_2_with_the_right_ca_is_accepted(
    authority: trustme.CA, ca_file: str, client: WebSocketClient
) -> None:
    seen = Seen()
    settings = SecuritySettings(security_profile=2, password=PASSWORD, ca_file=ca_file)
    with trio.fail_after(10):
        async with serving(echo(seen, password=PASSWORD), server_context(authority)) as url:
            await connect(url, settings, client=client)
    assert seen.passwords() == [PASSWORD]


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_wrong_ca_is_refused_as_an_invalid_central_system_certificate(
    authority: trustme.CA, client: WebSocketClient, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    settings = SecuritySettings(security_profile=2, password=PASSWORD, ca_file=str(other))
    with trio.fail_after(10):
        async with serving(echo(Seen()), server_context(authority)) as url:
            error = await refused(url, settings, client=client)
    assert error.failure == ConnectFailure.SERVER_CERTIFICATE
    assert str(error).endswith(
        ": TLS: certificate verify failed: unable to get local issuer certificate")


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_certificate_for_another_host_is_refused_too(
    authority: trustme.CA, ca_file: str, client: WebSocketClient
) -> None:
    settings = SecuritySettings(security_profile=2, password=PASSWORD, ca_file=ca_file)
    with trio.fail_after(10):
        async with serving(echo(Seen()), server_context(authority, host="csms.example")) as url:
            error = await refused(url, settings, client=client)
    assert error.failure == ConnectFailure.SERVER_CERTIFICATE
    assert "TLS: certificate verify failed: " in str(error) and "127.0.0.1" in str(error)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("tls", [False, True], ids=["profile 1", "profile 2"])
async def test_a_wrong_password_is_refused_with_http_401(
    authority: trustme.CA, ca_file: str, client: WebSocketClient, tls: bool
) -> None:
    seen = Seen()
    settings = SecuritySettings(security_profile=2 if tls else 1, password="wrong-password-0000",
                                ca_file=ca_file)
    context = server_context(authority) if tls else None
    with trio.fail_after(10):
        async with serving(echo(seen, password=PASSWORD), context) as url:
            error = await refused(url, settings, client=client)
    assert error.failure == ConnectFailure.CREDENTIALS_REFUSED
    assert "HTTP 401" in str(error) and "wrong-password" not in str(error)
    assert seen.passwords() == ["wrong-password-0000"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_authorization_key_is_the_password(
    authority: trustme.CA, ca_file: str, client: WebSocketClient
) -> None:
    seen = Seen()
    settings = SecuritySettings(security_profile=2, password=PASSWORD, ca_file=ca_file)
    with trio.fail_after(10):
        async with serving(echo(seen, password=KEY), server_context(authority)) as url:
            await refused(url, settings, client=client)
            await connect(url, settings, Credentials(security_profile=2, authorization_key=KEY),
                          client=client)
    assert seen.passwords() == [PASSWORD, KEY]


# --- profile 3: mutual TLS --------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
async def test_profile_3_with_a_client_certificate_is_accepted(
    authority: trustme.CA, ca_file: str, tmp_path: Path, client: WebSocketClient
) -> None:
    clients = trustme.CA()
    cert, key = client_files(clients, tmp_path)
    seen = Seen()
    settings = SecuritySettings(security_profile=3, password=PASSWORD, ca_file=ca_file,
                                cert_file=cert, key_file=key)
    with trio.fail_after(10):
        async with serving(echo(seen), server_context(authority, clients=clients)) as url:
            await connect(url, settings, client=client)
    assert seen.passwords() == [None]  # no HTTP Basic under profile 3


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("certificate", ["none", "untrusted"])
async def test_profile_3_without_a_trusted_client_certificate_is_refused(
    authority: trustme.CA, ca_file: str, tmp_path: Path, client: WebSocketClient,
    certificate: str,
) -> None:
    cert, key = client_files(trustme.CA(), tmp_path) if certificate == "untrusted" \
        else (None, None)
    settings = SecuritySettings(security_profile=3, ca_file=ca_file, cert_file=cert,
                                key_file=key)
    with trio.fail_after(10):
        async with handshaking(server_context(authority, clients=trustme.CA())) as url:
            error = await refused(url, settings, client=client)
    assert error.failure == ConnectFailure.CREDENTIALS_REFUSED
    assert ": TLS: " in str(error)


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_certificate_installed_over_ocpp_is_the_client_certificate(
    authority: trustme.CA, ca_file: str, tmp_path: Path, client: WebSocketClient
) -> None:
    clients = trustme.CA()
    cert, key = client_files(trustme.CA(), tmp_path)  # the group's: not trusted by the server
    settings = SecuritySettings(security_profile=3, ca_file=ca_file, cert_file=cert,
                                key_file=key)
    chain, private_key = installed(clients)
    with trio.fail_after(10):
        async with handshaking(server_context(authority, clients=clients)) as url:
            await refused(url, settings, client=client)
        async with serving(echo(Seen()), server_context(authority, clients=clients)) as url:
            await connect(url, settings, Credentials(
                security_profile=3, certificate_chain=chain, private_key=private_key,
            ), client=client)


# --- TLS versions and suites ------------------------------------------------------------------


async def test_no_tls_version_in_common_is_an_invalid_tls_version(
    authority: trustme.CA, ca_file: str
) -> None:
    context = server_context(authority)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    client_context = ssl.create_default_context(cafile=ca_file)
    client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    with trio.fail_after(10):
        async with handshaking(context) as url:
            with pytest.raises(ConnectError) as caught:
                async with opener_for(trio_websocket_client)(url, "CP-1",
                                                            ssl_context=client_context):
                    pass
    assert caught.value.failure == ConnectFailure.TLS_VERSION
    assert ": TLS: " in str(caught.value)


async def test_no_cipher_suite_in_common_is_an_invalid_tls_cipher_suite(
    authority: trustme.CA, ca_file: str
) -> None:
    context = server_context(authority)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE+AESGCM")
    client_context = ssl.create_default_context(cafile=ca_file)
    client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    client_context.set_ciphers("ECDHE+CHACHA20")
    with trio.fail_after(10):
        async with handshaking(context) as url:
            with pytest.raises(ConnectError) as caught:
                async with opener_for(trio_websocket_client)(url, "CP-1",
                                                            ssl_context=client_context):
                    pass
    assert caught.value.failure == ConnectFailure.TLS_CIPHER_SUITE
    assert ": TLS: " in str(caught.value)


async def test_a_refusal_that_is_no_matter_of_security_is_not_classified() -> None:
    with trio.fail_after(10):
        async with serving(echo(Seen()), None) as url:
            port = url.split(":")[2].split("/")[0]
        error = await refused(f"ws://127.0.0.1:{port}/ocpp",  # (nothing listens any more)
                              SecuritySettings(), client=trio_websocket_client)
    assert error.failure is None


# --- the machine: raising the profile, the key, connect failures -------------------------------


CONNECTION_EVENTS: Final = frozenset({
    "ReconfigurationOfSecurityParameters", "InvalidCentralSystemCertificate",
    "InvalidTLSVersion", "InvalidTLSCipherSuite", "FailedToAuthenticateAtCentralSystem",
})
"""The security events of the connection and its credentials."""


class SecurityPair(MachinePair):
    """A :class:`MachinePair` that also keeps the ``UseCredentials`` effects (the actor's)."""

    def __init__(self, **kwargs: Any) -> None:
        self.used: list[UseCredentials] = []
        super().__init__(**kwargs)

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, UseCredentials):
            self.used.append(effect)
        super()._apply(effect)

    def security_events(self) -> list[str]:
        """The security events of this slice (not those of every boot: StartupOfTheDevice)."""
        return [str(e.data["type"]) for e in self.events_of(Note)
                if e.what == "security_event" and e.data["type"] in CONNECTION_EVENTS]

    def change(self, key: str, value: str) -> str | None:
        return self.cs_call("ChangeConfiguration", {"key": key, "value": value}).status


@pytest.mark.parametrize(("tls", "certificate", "start", "value", "status"), [
    (False, False, 1, "2", "Rejected"),  # ws://: no TLS for profile 2
    (False, True, 1, "3", "Rejected"),
    (True, False, 2, "3", "Rejected"),  # no client certificate for profile 3
    (True, True, 2, "3", "Accepted"),
    (True, False, 1, "2", "Accepted"),
    (True, True, 3, "2", "Rejected"),  # lower: never
    (False, False, 1, "0", "Rejected"),
])
def test_raising_the_security_profile(tls: bool, certificate: bool, start: int, value: str,
                                      status: str) -> None:
    pair = SecurityPair(config={"SecurityProfile": start, "AuthorizationKey": KEY},
                        security=SecuritySpec(tls=tls, client_certificate=certificate))
    assert pair.change("SecurityProfile", value) == status
    profile = pair.cs_call("GetConfiguration", {"key": ["SecurityProfile"]}).result
    assert profile is not None
    shown = profile["configurationKey"][0]["value"]
    if status == "Accepted":
        assert shown == value
        assert [(u.credentials.security_profile, u.reconnect) for u in pair.used] == \
            [(int(value), True)]
        assert pair.security_events() == ["ReconfigurationOfSecurityParameters"]
    else:
        assert shown == str(start) and pair.used == [] and pair.security_events() == []


def test_the_same_profile_again_changes_nothing() -> None:
    pair = SecurityPair(config={"SecurityProfile": 2, "AuthorizationKey": KEY},
                        security=SecuritySpec(tls=True))
    assert pair.change("SecurityProfile", "2") == "Accepted"
    assert pair.used == [] and pair.security_events() == []


@pytest.mark.parametrize(("profile", "reconnect"), [(0, False), (1, True), (2, True)])
def test_a_new_authorization_key_is_the_password_and_the_charger_reconnects_with_it(
    profile: int, reconnect: bool
) -> None:
    """Under profiles 1 and 2 the key is the password: the charger disconnects and reconnects
    with it (the OCTT's TC_073_CS); under profile 0 it is only kept."""
    security = SecuritySpec(tls=profile == 2)
    pair = SecurityPair(config={"SecurityProfile": profile}, security=security)
    assert pair.change("AuthorizationKey", KEY) == "Accepted"
    assert [(u.credentials.authorization_key, u.reconnect) for u in pair.used] == [
        (KEY, reconnect)]
    assert pair.security_events() == ["ReconfigurationOfSecurityParameters"]
    assert KEY not in repr(pair.used)
    got = pair.cs_call("GetConfiguration", {"key": ["AuthorizationKey"]}).result
    assert got is not None and "value" not in got["configurationKey"][0]


def test_an_installed_client_certificate_goes_with_the_credentials() -> None:
    pair = SecurityPair(config={"SecurityProfile": 2, "AuthorizationKey": KEY},
                        security=SecuritySpec(tls=True))
    assert pair.change("SecurityProfile", "3") == "Rejected"  # none installed yet
    chain, key = installed(trustme.CA())
    assert pair.machine.credentials().certificate_chain is None
    # (what CertificateSigned does once it accepted a chain)
    context = ChargerContext(pair.spec, rng=random.Random(1), new_id=lambda: "x",
                             wall_epoch=0.0, now=0.0, profiles=(Profile.CORE,), plugin=PLUGIN)
    context.client_certificate = (chain, key)
    context.use_credentials()
    effect = context.effects[-1]
    assert isinstance(effect, UseCredentials)
    assert (effect.credentials.certificate_chain, effect.credentials.private_key) == (chain, key)
    assert "BEGIN" not in repr(effect)


@pytest.mark.parametrize(("failure", "event"), [
    (ConnectFailure.SERVER_CERTIFICATE, "InvalidCentralSystemCertificate"),
    (ConnectFailure.TLS_VERSION, "InvalidTLSVersion"),
    (ConnectFailure.TLS_CIPHER_SUITE, "InvalidTLSCipherSuite"),
    (ConnectFailure.CREDENTIALS_REFUSED, "FailedToAuthenticateAtCentralSystem"),
])
def test_a_failed_connect_raises_its_security_event_once_per_outage(
    failure: ConnectFailure, event: str
) -> None:
    pair = SecurityPair(connect=False)
    pair.power_on()
    for attempt in range(3):
        pair.machine.connect_failed(failure, pair.now, f"attempt {attempt}")
        pair.drain()
    assert pair.security_events() == [event]
    notes = [e for e in pair.events_of(Note)
             if e.what == "security_event" and e.data["type"] == event]
    assert notes[0].data["tech_info"] == "attempt 0"
    pair.connect()
    pair.disconnect()
    pair.machine.connect_failed(failure, pair.now)
    pair.drain()
    assert pair.security_events() == [event, event]


async def test_a_charger_restarted_after_a_crash_connects_as_its_new_machine_says() -> None:
    """Keys and certificates set over OCPP live in the machine, which a crash loses: the
    restarted charger connects with what its new machine knows (the fleet file's settings),
    so a CSMS can never lower the profile the charger connects with below what it reports."""
    from simulator.actors.charger import ChargerActor, ChargerControl
    from tests.actors.test_charger_actor import FakeCsms, Recorder, make_env

    env = make_env(FakeCsms(), Recorder())
    control = ChargerControl()
    control.credentials = Credentials(security_profile=3, authorization_key="K" * 20,
                                      certificate_chain="chain", private_key="key")
    actor = ChargerActor(env, control)  # a restart: a new actor on the same control
    assert control.credentials == actor.machine.credentials()
    assert control.credentials.security_profile == 0
    assert control.credentials.certificate_chain is None


def test_the_reconnect_after_a_raise_waits_for_the_answer_to_a_call_of_ours() -> None:
    """The security event of the raise goes out first; the reconnect waits for its answer
    (the CS may be answering it as the connection closes, and lose the frames that follow),
    and for ``call_timeout`` at the most."""
    cs = FakeCentralSystem()
    cs.answer("SecurityEventNotification", DEFER, DEFER)
    pair = SecurityPair(cs=cs, config={"SecurityProfile": 0, "AuthorizationKey": KEY})
    pair.release()  # (the boot's StartupOfTheDevice)
    assert pair.change("SecurityProfile", "1") == "Accepted"
    assert pair.used == []  # the event is in flight: no reconnect yet
    pair.advance(1)
    assert pair.used == []
    assert pair.release("SecurityEventNotification") == 1
    assert [(u.credentials.security_profile, u.reconnect) for u in pair.used] == [(1, True)]


def test_the_reconnect_after_a_raise_goes_at_the_call_timeout_without_an_answer() -> None:
    cs = FakeCentralSystem()
    cs.answer("SecurityEventNotification", DEFER, DEFER)
    pair = SecurityPair(cs=cs, config={"SecurityProfile": 0, "AuthorizationKey": KEY},
                        call_timeout=10.0)
    pair.release()
    assert pair.change("SecurityProfile", "1") == "Accepted"
    pair.advance(9.5)
    assert pair.used == []
    pair.advance(1)
    assert [(u.credentials.security_profile, u.reconnect) for u in pair.used] == [(1, True)]
