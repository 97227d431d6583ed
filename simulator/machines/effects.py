"""Effects: what the sans-IO machines ask the actor layer to do.

A machine never performs I/O. Each input method (``receive``, ``tick``, ``plug_in`` ...) appends
effects to a list that the actor drains with ``take_effects()`` and applies in order: put bytes on
the wire, publish an event, close the socket, reboot, persist the transaction outbox. Effects are
frozen msgspec Structs, so tests compare them by value and the runtime can log them as they are.
"""

from __future__ import annotations

import enum
import urllib.parse
from collections.abc import Iterable

import msgspec

from simulator.events import Event


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One queued transaction message (StartTransaction, StopTransaction or a transaction's
    MeterValues), as persisted in the ledger's ``outbox`` table and restored after a crash.

    Attributes:
        seq: position in the charger's FIFO (strictly increasing, never reused).
        action: the OCPP action.
        payload: the request payload as JSON text, with its original timestamps. For messages
            that belong to a transaction whose id the CS has not given yet, ``transactionId`` is
            left out (never -1) and filled in from ``transaction_id`` when the message is sent.
        local_tx: the charger-local transaction number the message belongs to, if any.
        transaction_id: the CS's transaction id once known, else ``None``.
        attempts: how many times the message has been sent and failed (CALLERROR or timeout).
        unique_id: the message id of the last send, if any (a retry gets a new one).
    """

    seq: int
    action: str
    payload: str
    local_tx: int | None = None
    transaction_id: int | None = None
    attempts: int = 0
    unique_id: str | None = None


class Send(msgspec.Struct, frozen=True):
    """Put ``data`` (one encoded OCPP-J frame) on the wire. The actor publishes the ``FrameOut``
    event once the (chaos) transport has actually sent it."""

    data: bytes
    message_type: int
    unique_id: str
    action: str


class Publish(msgspec.Struct, frozen=True):
    """Publish ``event`` to the bus."""

    event: Event


class CloseConnection(msgspec.Struct, frozen=True):
    """Close the socket now; the actor reconnects as usual."""

    reason: str


class Reboot(msgspec.Struct, frozen=True):
    """Close the socket, wait ``delay`` seconds, call ``power_on`` and reconnect."""

    delay: float


class OpenTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """A transaction that was running when the charger's memory was written: after a power
    loss (a crash, a kill) it is stopped with reason PowerLoss.

    Attributes:
        local_tx: the charger-local transaction number.
        connector_id: where it runs.
        transaction_id: the CS's id once StartTransaction was answered, else ``None``.
    """

    local_tx: int
    connector_id: int
    transaction_id: int | None = None


class ChargerMemory(msgspec.Struct, frozen=True, kw_only=True):
    """What a charger keeps through a power loss, as a real one keeps it in flash: written with
    every outbox snapshot (every transaction message queued or delivered), and given back to the
    machine that restarts the charger (after a crash, or by ``--resume`` after a kill).

    Attributes:
        next_local_tx: the next charger-local transaction number (local ids never repeat).
        next_seq: the next outbox ``seq`` (seqs never repeat, so storage acknowledgements of an
            earlier life cannot be mistaken for this one's).
        registers_wh: each connector's energy import register (connector 1 first), as of the
            last transaction message: the register goes on from there.
        open_transactions: the transactions running, to be stopped with PowerLoss.
        firmware_version: the ``firmwareVersion`` of a firmware installed over OCPP (None: the
            spec's).
    """

    next_local_tx: int = 1
    next_seq: int = 1
    registers_wh: tuple[float, ...] = ()
    open_transactions: tuple[OpenTransaction, ...] = ()
    firmware_version: str | None = None


def durable_through(entries: Iterable[OutboxEntry], memory: ChargerMemory | None) -> int:
    """The highest ``seq`` a stored snapshot of ``entries`` and ``memory`` makes durable: every
    message it holds, and every one numbered before the memory's next seq (delivered since)."""
    return max([entry.seq for entry in entries] + [memory.next_seq - 1 if memory else 0])


class PersistOutbox(msgspec.Struct, frozen=True, kw_only=True):
    """The transaction queue of ``charger`` changed: store ``entries`` (the whole queue) and
    ``memory`` (None: unchanged). Once it is stored, every message with a ``seq`` up to
    ``through`` is durable: tell the machine (``ChargerMachine.outbox_stored``), which only then
    puts such a message on the wire (write-ahead)."""

    charger: str
    entries: tuple[OutboxEntry, ...]
    through: int = 0
    memory: ChargerMemory | None = None


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """What the charger proves itself with on its next connection (security profiles 1-3).
    Holds secrets: never published, logged or stored; its ``repr`` hides them.

    Attributes:
        security_profile: the profile to connect with (``SecurityProfile``; 0: as the fleet
            file's ``[csms]`` / group security says).
        authorization_key: the HTTP Basic password set over OCPP (``AuthorizationKey``); None:
            the fleet file's password.
        certificate_chain: the client certificate chain installed over OCPP
            (CertificateSigned), PEM, leaf first; None: the fleet file's ``cert_file``.
        private_key: the private key of ``certificate_chain``'s leaf, PEM (unencrypted).
    """

    security_profile: int = 0
    authorization_key: str | None = None
    certificate_chain: str | None = None
    private_key: str | None = None

    def __repr__(self) -> str:
        return (f"Credentials(security_profile={self.security_profile}, "
                f"authorization_key={'<set>' if self.authorization_key else None}, "
                f"certificate_chain={'<set>' if self.certificate_chain else None})")


class UseCredentials(msgspec.Struct, frozen=True):
    """From the next connection on, connect with ``credentials``; with ``reconnect``, close the
    current connection now so that the next one starts at once (a raised ``SecurityProfile``)."""

    credentials: Credentials
    reconnect: bool = False

    def __repr__(self) -> str:
        return f"UseCredentials({self.credentials!r}, reconnect={self.reconnect})"


class TransferKind(enum.StrEnum):
    """Which way a real transfer goes."""

    DOWNLOAD = "download"  # GET url: the body is the firmware
    UPLOAD = "upload"  # PUT url with the body (a diagnostics file or a log)


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    """Really transfer a file for the job step ``job`` (a real transfer: the group's
    ``real_transfers``, an http(s) location): a download GETs ``url``, an upload PUTs ``body``
    to it. The actor runs it in its own task, gives up after ``timeout`` seconds, and hands the
    outcome back to the machine (``ChargerMachine.transfer_done(job, ok, data, now)``, ``data``
    the downloaded bytes); the step waits for it. A result for a step that has ended since is
    ignored."""

    job: str
    kind: TransferKind
    url: str
    body: bytes | None = None
    timeout: float = 60.0

    def __repr__(self) -> str:
        size = "" if self.body is None else f", body={len(self.body)} bytes"
        return f"Transfer({self.job!r}, {self.kind.value}, {redacted_url(self.url)!r}{size})"


def redacted_url(url: str) -> str:
    """``url`` fit for a record: the user information (``user:password@``) left out."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unreadable location>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


Effect = Send | Publish | CloseConnection | Reboot | PersistOutbox | UseCredentials | Transfer
"""Everything a machine can ask for."""
