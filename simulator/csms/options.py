"""How the embedded reference central system behaves: one frozen options record.

:class:`CsmsOptions` is everything a test or a fleet file can tune about the built-in CSMS: what a
BootNotification is answered with, which idTags are accepted, blocked or expired (``fnmatch``
patterns, case-sensitive), whether a payload that breaks the schema is refused or tolerated, which
charge points may connect and with which HTTP Basic password (security profile 1), and the
transport limits of the server. It is pure data: no trio, no I/O.
"""

from __future__ import annotations

import enum
from typing import Annotated, Final

import msgspec

MIB: Final = 1024 * 1024


class BootStatus(enum.StrEnum):
    """The three BootNotification answers (the ``RegistrationStatus`` values of OCPP 1.6)."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class CsmsOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The reference CSMS's behaviour. Every field has a default that makes a well-behaved CSMS.

    Boot:
        boot_status: what every BootNotification is answered with.
        heartbeat_interval: seconds, the ``interval`` sent with ``Accepted``.
        boot_retry_interval: seconds, the ``interval`` sent with ``Pending`` or ``Rejected``
            (the minimum wait before the charge point boots again).
        pending_then_accept_after: when set to N, each charge point's first N boots are answered
            ``Pending`` and every later one ``Accepted`` (``boot_status`` is then ignored).
        refuse_before_boot: when true, a CALL other than BootNotification from a charge point whose
            last boot was not accepted (or that never booted) is answered with a ``SecurityError``
            CALLERROR; when false (default) it is answered normally and recorded as an anomaly.

    Authorization (``fnmatch`` patterns, checked in this order):
        blocked_tags: an idTag matching one of these is ``Blocked``.
        expired_tags: an idTag matching one of these is ``Expired``.
        accepted_tags: when non-empty, an idTag matching none of these is ``Invalid``; when empty,
            every idTag not blocked or expired is ``Accepted``.
        A StartTransaction whose idTag already has a running accepted transaction gets
        ``ConcurrentTx`` (it still gets a transaction id: the CS cannot refuse one).

    Other answers:
        data_transfer_vendors: ``fnmatch`` patterns of the vendorIds whose DataTransfer is
            ``Accepted``; any other vendorId gets ``UnknownVendorId``.
        sign_certificate_accepted: the SignCertificate answer (``Accepted`` or ``Rejected``).

    Validation:
        validate: true (default): a CALL payload that fails the strict decode is answered with the
            CALLERROR its violation calls for (FormationViolation, TypeConstraintViolation, ...).
            False: the violation is recorded (in the frame's ``violations`` and as an anomaly) and
            the CALL is still answered, as if the payload carried no usable fields (see
            :meth:`simulator.csms.core.CentralSystem.receive`) — a tolerant CSMS.
        max_clock_skew: seconds; a timestamp further than this in the future of the CSMS's wall
            clock is recorded as an anomaly (a past one is not: queued messages are legitimately
            old), and so is any timestamp before 2000-01-01.

    Admission (checked by the server at the WebSocket handshake):
        allowed_chargers: ``fnmatch`` patterns of identities that may connect; others get HTTP 404.
        passwords: identity → AuthorizationKey. When non-empty, every connection must present
            ``Authorization: Basic base64(identity:key)`` matching this map, else HTTP 401. Never
            logged or published.

    Numbering and limits:
        first_transaction_id: the lowest transaction id handed out. Ids stay positive int32 and
            are allocated per charge point, in blocks of 1000 placed by a stable hash of the
            identity (see :class:`~simulator.csms.transaction_book.IdRanges`).
        max_anomalies_per_charger: how many anomaly records each charger keeps for queries (the
            counts in the statistics are never truncated).
        max_message_size: bytes; a larger WebSocket message closes the connection with 1009.
        handshake_timeout: seconds a client has to complete the opening handshake.

    Calls of its own:
        poll_interval: seconds; when set, every connected charge point gets a CALL from the
            CSMS this often: GetConfiguration, then TriggerMessage (Heartbeat), in turn. A CSMS
            that calls is what the faults on a charger's answers need (late, wrong id, slow,
            rejected). ``None`` (default): the CSMS only answers.
    """

    boot_status: BootStatus = BootStatus.ACCEPTED
    heartbeat_interval: NonNegativeInt = 60
    boot_retry_interval: NonNegativeInt = 30
    pending_then_accept_after: NonNegativeInt | None = None
    refuse_before_boot: bool = False
    accepted_tags: tuple[str, ...] = ()
    blocked_tags: tuple[str, ...] = ("BLOCKED-*",)
    expired_tags: tuple[str, ...] = ("EXPIRED-*",)
    data_transfer_vendors: tuple[str, ...] = ("*",)
    sign_certificate_accepted: bool = True
    validate: bool = True
    max_clock_skew: PositiveFloat = 300.0
    allowed_chargers: tuple[str, ...] = ("*",)
    passwords: dict[str, str] = {}
    first_transaction_id: PositiveInt = 1
    max_anomalies_per_charger: NonNegativeInt = 1000
    max_message_size: PositiveInt = MIB
    handshake_timeout: PositiveFloat = 10.0
    poll_interval: PositiveFloat | None = None

    def __repr__(self) -> str:
        # passwords must never reach a log line through a repr
        fields = ", ".join(
            f"{name}={'***' if name == 'passwords' and value else value!r}"
            for name, value in msgspec.structs.asdict(self).items()
        )
        return f"CsmsOptions({fields})"
