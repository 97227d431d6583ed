"""Security profiles at the connection: what a charger proves itself with, and how it checks
the central system (OCPP 1.6 security whitepaper, profiles 0-3).

A group's :class:`SecuritySettings` (the fleet file's ``[csms]`` security, or the group's own
``[group.security]``) are the starting point; the charger's :class:`~simulator.machines.effects.
Credentials` in force (its ``SecurityProfile``, an ``AuthorizationKey`` and a client
certificate set over OCPP) override them, connection by connection
(:meth:`GroupSecurity.connection`):

- HTTP Basic (``identity:password``) under profiles 0-2 when there is a password: the
  ``AuthorizationKey`` set over OCPP, else the group's ``password``; never under profile 3,
  where the client certificate is the proof;
- TLS for a ``wss://`` URL, the server's certificate checked against ``ca_file`` (None: the
  system trust store) and its host name; the client certificate offered is the one installed
  over OCPP (CertificateSigned), else the group's ``cert_file``/``key_file``, if any.

Python's ``ssl`` loads a certificate chain only from a file: an installed chain and its key
are written to a private file (an anonymous memory file where the system has them, else a
temporary file readable by its owner only) that is removed as soon as it is loaded. The
contexts are built once per group and once per installed certificate. Secrets never go into a
message: a :class:`SecuritySettings` hides them in ``repr``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final

import trio

from simulator.actors.link import CredentialOpener
from simulator.actors.transport import (
    ConnectError,
    Transport,
    WebSocketClient,
    charger_url,
    open_transport,
)
from simulator.machines.effects import Credentials
from simulator.ocpp.plugin import ProtocolPlugin

BASIC_AUTH_PROFILES: Final = frozenset({0, 1, 2})
"""The profiles under which a password is sent (HTTP Basic); profile 3 proves itself by its
client certificate alone."""


@dataclasses.dataclass(frozen=True, slots=True)
class SecuritySettings:
    """One group's security settings from the fleet file (see the module docstring):
    ``security_profile``, ``password`` (secret), ``ca_file``, ``cert_file``, ``key_file``."""

    security_profile: int = 0
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    """What one connection uses: the HTTP Basic ``password`` (None: no ``Authorization``
    header) and the TLS context (None: plain ``ws://``). Holds a secret: never logged."""

    password: str | None = dataclasses.field(repr=False)
    ssl_context: ssl.SSLContext | None


def tls_context(settings: SecuritySettings, *, chain: str | None = None,
                key: str | None = None) -> ssl.SSLContext:
    """A TLS client context: the server checked against ``settings.ca_file`` (None: the
    system trust store) and its host name; the client certificate ``chain`` with ``key``
    (PEM, installed over OCPP) when given, else ``settings``' ``cert_file``/``key_file`` if
    any. Raises ``OSError`` or ``ssl.SSLError`` for files or PEM that cannot be used (the
    message names no secret)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if chain is not None and key is not None:
        with _private_file(chain + "\n" + key) as path:
            context.load_cert_chain(path, password=_no_passphrase)
    elif settings.cert_file is not None:
        context.load_cert_chain(settings.cert_file, settings.key_file, password=_no_passphrase)
    return context


def _no_passphrase() -> bytes:
    """An encrypted private key is refused (OpenSSL would otherwise prompt on the terminal)."""
    raise ssl.SSLError(0, "the private key is encrypted; give an unencrypted key_file")


class GroupSecurity:
    """The connections of one group's chargers (see the module docstring): ``settings`` as the
    fleet file gives them, ``tls`` whether the URL is ``wss://``. The group's TLS context is
    built at construction, so that unusable files fail at start-up (``OSError`` or
    ``ssl.SSLError``); a context for a certificate installed over OCPP is built at its first
    connection and kept."""

    def __init__(self, settings: SecuritySettings, *, tls: bool) -> None:
        self.settings = settings
        self.tls = tls
        self._context = tls_context(settings) if tls else None
        self._installed: dict[bytes, ssl.SSLContext] = {}  # by digest of chain and key

    def connection(self, credentials: Credentials | None) -> Connection:
        """What a connection with ``credentials`` in force uses (None: the group's settings).
        Raises ``OSError``/``ssl.SSLError`` for an installed certificate that cannot be
        loaded (its message names no secret)."""
        settings = self.settings
        profile = settings.security_profile if credentials is None \
            else credentials.security_profile
        password = (credentials.authorization_key if credentials is not None else None) \
            or settings.password
        context = self._context
        if context is not None and credentials is not None and \
                credentials.certificate_chain and credentials.private_key:
            context = self._installed_context(credentials.certificate_chain,
                                              credentials.private_key)
        return Connection(password=password if profile in BASIC_AUTH_PROFILES else None,
                          ssl_context=context)

    def _installed_context(self, chain: str, key: str) -> ssl.SSLContext:
        digest = hashlib.sha256(f"{chain}\0{key}".encode()).digest()
        context = self._installed.get(digest)
        if context is None:
            context = self._installed[digest] = tls_context(self.settings, chain=chain, key=key)
        return context


def credential_opener(
    base_url: str,
    security: GroupSecurity,
    *,
    plugin: ProtocolPlugin,
    client: WebSocketClient,
    wrap: Callable[[str, trio.abc.Stream], trio.abc.Stream] | None = None,
) -> CredentialOpener:
    """``(identity, credentials)`` → :func:`~simulator.actors.transport.open_transport` to
    ``base_url`` with what ``security`` makes of the credentials in force, ``client`` offering
    ``plugin``'s subprotocol, ``wrap(identity, stream)`` between the stream and the client. A
    certificate installed over OCPP that cannot be loaded is a :class:`ConnectError` (retried
    like any failed connect; its text names no secret)."""

    @contextlib.asynccontextmanager
    async def opener(identity: str, credentials: Credentials) -> AsyncIterator[Transport]:
        try:
            connection = security.connection(credentials)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"{charger_url(base_url, identity)}: the client certificate "
                               f"installed over OCPP cannot be used ({type(exc).__name__})"
                               ) from None
        wrapper = None if wrap is None else (lambda stream: wrap(identity, stream))
        async with open_transport(base_url, identity, plugin=plugin, client=client,
                                  password=connection.password,
                                  ssl_context=connection.ssl_context,
                                  wrap=wrapper) as transport:
            yield transport

    return opener


@contextlib.contextmanager
def _private_file(text: str) -> Iterator[str]:
    """A path holding ``text`` that only this process can read, removed on exit: an anonymous
    memory file (``/proc/self/fd/N``) where the system offers one, else a temporary file of
    mode 0600 unlinked on exit."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("client-certificate", os.MFD_CLOEXEC)
        try:
            with open(fd, "w", closefd=False) as file:
                file.write(text)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(suffix=".pem")  # (mkstemp: mode 0600, owner only)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        yield path
    finally:
        os.unlink(path)


__all__ = [
    "BASIC_AUTH_PROFILES",
    "Connection",
    "GroupSecurity",
    "SecuritySettings",
    "credential_opener",
    "tls_context",
]
