"""The Core profile's CS-initiated operations.

Rules (OCPP 1.6 core spec §5, the operations the Central System initiates):

- ChangeAvailability: connector 0 means the whole charge point; an unknown connector is Rejected;
  Inoperative while a transaction runs is Scheduled and applied when it ends; the availability
  survives a reboot.
- ChangeConfiguration / GetConfiguration: the configuration store's answers; write-only values
  are redacted in the ``ConfigurationChanged`` event; an accepted change is seen by the next step.
- Security (1.6 security whitepaper): ``SecurityProfile`` only rises (the store refuses lower).
  A raise the connection cannot carry is Rejected, as the charger must not take a profile it
  cannot connect with: 2 and 3 need TLS (a ``wss://`` URL: ``ChargerSpec.security.tls``), 3
  a client certificate (the group's or one installed over OCPP). After an accepted raise the
  charger reconnects with the new profile; after an accepted ``AuthorizationKey`` under
  profile 1 or 2 it reconnects with the new password (the OCTT's TC_073_CS: disconnect, then
  reconnect with the new password). Both raise the security event
  ReconfigurationOfSecurityParameters.
- ClearCache empties the authorization cache.
- DataTransfer: Accepted for a vendorId listed in the spec, else UnknownVendorId.
- RemoteStartTransaction: Rejected for an unknown, busy or unavailable connector, or one
  reserved for another tag (without connectorId: one that no reservation keeps from the tag);
  else Accepted, then the idTag is authorized as if presented locally when
  ``AuthorizeRemoteTxRequests`` is true, or taken as authorized at once. A charging profile in
  the request (a TxProfile without transactionId) is installed for the transaction this
  starts, and the request is Rejected when the profile is not acceptable
  (:mod:`simulator.machines.charging_profiles`); without the SmartCharging profile it is
  ignored.
- RemoteStopTransaction: a local stop with reason Remote; Rejected for an unknown transaction.
- Reset: Accepted; then the reboot sequence of :mod:`simulator.machines.reboot` with reason
  SoftReset / HardReset.
- UnlockConnector: a running transaction stops with UnlockCommand, and a cable left locked after
  the EV went is released; Unlocked (UnlockFailed for a connector that does not exist).
"""

from __future__ import annotations

from typing import Final

import msgspec

from simulator.events import ConfigurationChanged
from simulator.machines.configuration import redact
from simulator.machines.context import ChargerContext
from simulator.machines.metering import Metering
from simulator.machines.profiles import Answer, Followup, ProfileHandler
from simulator.machines.reboot import RebootSequence
from simulator.machines.transactions import Transactions
from simulator.ocpp.v16 import (
    AvailabilityStatus,
    AvailabilityType,
    ChangeAvailabilityRequest,
    ChangeAvailabilityResponse,
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ClearCacheRequest,
    ClearCacheResponse,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferRequest,
    DataTransferResponse,
    DataTransferStatus,
    GetConfigurationRequest,
    GetConfigurationResponse,
    Profile,
    Reason,
    RemoteStartStopStatus,
    RemoteStartTransactionRequest,
    RemoteStartTransactionResponse,
    RemoteStopTransactionRequest,
    RemoteStopTransactionResponse,
    ResetRequest,
    ResetResponse,
    ResetStatus,
    ResetType,
    SecurityEvent,
    UnlockConnectorRequest,
    UnlockConnectorResponse,
    UnlockStatus,
)

_SECRET_KEYS: Final = {"authorizationkey": "AuthorizationKey"}
"""The write-only key by its case-folded name: a CS that writes it in another case (an
unknown key, NotSupported) may still be sending the real key, which is never recorded."""
_SETTINGS_KEYS: Final = frozenset(
    {"TransactionMessageAttempts", "TransactionMessageRetryInterval", "MinimumStatusDuration"}
)


class CoreHandler(ProfileHandler):
    """The Core profile's CS→CP operations (see the module docstring)."""

    profile = Profile.CORE

    def __init__(
        self,
        ctx: ChargerContext,
        *,
        transactions: Transactions,
        metering: Metering,
        reboots: RebootSequence,
    ) -> None:
        super().__init__(ctx)
        self.transactions = transactions
        self.metering = metering
        self.reboots = reboots
        self._security = (ctx.config.get_int("SecurityProfile"),
                          ctx.config.get_str("AuthorizationKey"))
        """The profile and the key (a secret: never recorded) the actor last heard of."""

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to one Core request and what to do once it is sent."""
        match request:
            case ChangeAvailabilityRequest():
                return self._change_availability(request, now)
            case ChangeConfigurationRequest():
                return self._change_configuration(request, now)
            case ClearCacheRequest():
                self.ctx.cache.clear()
                return ClearCacheResponse(status=ClearCacheStatus.ACCEPTED), None
            case DataTransferRequest():
                known = request.vendor_id in self.ctx.spec.data_transfer_vendors
                return DataTransferResponse(
                    status=DataTransferStatus.ACCEPTED if known
                    else DataTransferStatus.UNKNOWN_VENDOR_ID
                ), None
            case GetConfigurationRequest():
                values, unknown = self.ctx.config.get(list(request.key) if request.key else None)
                return GetConfigurationResponse(
                    configuration_key=tuple(values), unknown_key=tuple(unknown) or None
                ), None
            case RemoteStartTransactionRequest():
                return self._remote_start(request, now)
            case RemoteStopTransactionRequest():
                return self._remote_stop(request, now)
            case ResetRequest():
                return ResetResponse(status=ResetStatus.ACCEPTED), \
                    lambda: self._reset(request.type, now)
            case UnlockConnectorRequest():
                return self._unlock(request, now)
        return None

    def _reset(self, kind: ResetType, now: float) -> None:
        hard = kind == ResetType.HARD
        reason = Reason.HARD_RESET if hard else Reason.SOFT_RESET
        self.reboots.begin(now, reason, hard=hard, note="reset")

    # --- availability -------------------------------------------------------------------------

    def _change_availability(
        self, request: ChangeAvailabilityRequest, now: float
    ) -> tuple[ChangeAvailabilityResponse, Followup]:
        cid, wanted = request.connector_id, request.type
        if cid not in self.ctx.connectors:
            return ChangeAvailabilityResponse(status=AvailabilityStatus.REJECTED), None
        targets = list(self.ctx.points) if cid == 0 else [cid]
        busy = [c for c in targets if self.ctx.points[c].transaction is not None]
        self.ctx.scheduled.pop(cid, None)
        if wanted == AvailabilityType.OPERATIVE:
            for c in targets:
                self.ctx.scheduled.pop(c, None)
        if self.ctx.availability[cid] == wanted and all(self.ctx.availability[c] == wanted
                                                    for c in targets):
            return ChangeAvailabilityResponse(status=AvailabilityStatus.ACCEPTED), None
        if wanted == AvailabilityType.INOPERATIVE and busy:
            self.ctx.scheduled[cid] = wanted
            for c in busy:
                self.ctx.scheduled[c] = wanted

            def apply_idle() -> None:
                for c in targets:
                    if c not in busy:
                        self.ctx.set_availability(c, wanted, now)

            return ChangeAvailabilityResponse(status=AvailabilityStatus.SCHEDULED), apply_idle
        return (
            ChangeAvailabilityResponse(status=AvailabilityStatus.ACCEPTED),
            lambda: self.ctx.set_availability(cid, wanted, now),
        )

    # --- configuration ------------------------------------------------------------------------

    def _change_configuration(
        self, request: ChangeConfigurationRequest, now: float
    ) -> tuple[ChangeConfigurationResponse, Followup]:
        refusal = self._unreachable_profile(request.key, request.value)
        if refusal is not None:
            self.ctx.note(now, "security_profile_refused", value=request.value, reason=refusal)
            status = ConfigurationStatus.REJECTED
        else:
            status = self.ctx.config.change(request.key, request.value)
        shown = redact(_SECRET_KEYS.get(request.key.casefold(), request.key), request.value)
        self.ctx.publish(ConfigurationChanged(t=now, charger=self.ctx.charger, key=request.key,
                                              value=shown, status=status.value))
        followup = None
        if status == ConfigurationStatus.ACCEPTED:
            followup = self._configuration_applied(request.key, now)
        return ChangeConfigurationResponse(status=status), followup

    def _configuration_applied(self, key: str, now: float) -> Followup:
        """A key changed: make the parts that read it follow; what must wait until the answer
        is sent is the followup. A raised ``SecurityProfile`` reconnects with the new profile
        once the answer is on its way, and so does a new ``AuthorizationKey`` under profile 1
        or 2 (it is the password); each is a ReconfigurationOfSecurityParameters security
        event."""
        if key in _SETTINGS_KEYS:
            self.ctx.sync_session_settings()
        elif key == "MeterValueSampleInterval":
            self.metering.reschedule_samples(now)
        elif key == "ClockAlignedDataInterval":
            self.metering.aligned_interval_changed(now)
        elif key in ("SecurityProfile", "AuthorizationKey"):
            return lambda: self._security_changed(now, reconnect=True)
        return None

    def powered_on(self, now: float) -> None:
        """A change of a security key held for the reboot (RebootRequired) applies now."""
        self._security_changed(now, reconnect=False)

    def _security_changed(self, now: float, *, reconnect: bool) -> None:
        """If the profile or the key changed, tell the actor and raise
        ReconfigurationOfSecurityParameters; with ``reconnect`` (a change over OCPP, not one
        applied at a reboot), reconnect at once when the connection changes: a raised profile,
        or a new key under profile 1 or 2 (where it is the password)."""
        profile = self.ctx.config.get_int("SecurityProfile")
        key = self.ctx.config.get_str("AuthorizationKey")
        old_profile, old_key = self._security
        if (profile, key) == self._security:
            return
        self._security = (profile, key)
        changed = (f"SecurityProfile {old_profile} to {profile}" if profile != old_profile
                   else "AuthorizationKey changed")
        self.ctx.security_event(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, now,
                                changed)
        password_changed = key != old_key and profile in (1, 2)
        if reconnect and (profile != old_profile or password_changed):
            self.ctx.use_credentials(reconnect_by=now + self.ctx.spec.call_timeout)
        else:
            self.ctx.use_credentials()

    def _unreachable_profile(self, key: str, value: str) -> str | None:
        """Why a ``SecurityProfile`` of ``value`` cannot be connected with (None: it can, or
        ``key`` is another key; the store checks the rest)."""
        text = value.strip().removeprefix("+")
        if key != "SecurityProfile" or not (text.isascii() and text.isdigit()):
            return None  # (not a number: the store rejects it)
        profile = int(text)
        security = self.ctx.spec.security
        if profile >= 2 and not security.tls:
            return f"security profile {profile} needs TLS; the central system's URL is ws://"
        if profile == 3 and not (security.client_certificate or self.ctx.client_certificate):
            return "security profile 3 needs a client certificate; none is installed"
        return None

    # --- remote start / stop, unlock ----------------------------------------------------------

    def _pick_connector(self, tag: str, parent: str | None) -> int | None:
        """For a RemoteStart without connectorId: a plugged-in idle connector, else a free one,
        among those no reservation keeps from ``tag``."""
        idle = [p for p in self.ctx.points.values()
                if p.transaction is None and p.authorizing is None
                and self.ctx.operative(p.connector_id)
                and self.transactions.reservation_blocker(p.connector_id, tag, parent) is None]
        for point in idle:
            if point.ev is not None:
                return point.connector_id
        for point in idle:
            if point.ready_tag is None:
                return point.connector_id
        return None

    def _remote_start(
        self, request: RemoteStartTransactionRequest, now: float
    ) -> tuple[RemoteStartTransactionResponse, Followup]:
        tag = request.id_tag
        parent = self.transactions.known_parent(tag, now)
        cid = request.connector_id if request.connector_id is not None \
            else self._pick_connector(tag, parent)
        rejected = RemoteStartTransactionResponse(status=RemoteStartStopStatus.REJECTED)
        if cid is None or cid not in self.ctx.points:
            return rejected, None
        point = self.ctx.points[cid]
        if point.transaction is not None or point.authorizing is not None \
                or not self.ctx.operative(cid):
            return rejected, None
        reservation = self.transactions.reservation_blocker(cid, tag, parent)
        if reservation is not None:
            self.ctx.note(now, "remote_start_refused", cid, id_tag=tag, status="Reserved",
                          reservation_id=reservation.reservation_id)
            return rejected, None
        profile = request.charging_profile
        if profile is not None and not self.ctx.supports(Profile.SMART_CHARGING):
            self.ctx.note(now, "charging_profile_ignored", cid,
                          reason="SmartCharging not supported")
        elif profile is not None:
            problem = self.ctx.charging_profiles.install_for_remote_start(
                profile, cid, self.ctx.config)
            self.ctx.note(now, "charging_profile_set", cid,
                          charging_profile_id=profile.charging_profile_id,
                          purpose=profile.charging_profile_purpose.value,
                          stack_level=profile.stack_level,
                          status="Rejected" if problem else "Accepted", reason=problem)
            if problem is not None:
                return rejected, None

        def go() -> None:
            if self.ctx.config.get_bool("AuthorizeRemoteTxRequests"):
                self.transactions.authorize(cid, tag, now)
            else:
                self.transactions.authorized(cid, tag, now)

        return RemoteStartTransactionResponse(status=RemoteStartStopStatus.ACCEPTED), go

    def _remote_stop(
        self, request: RemoteStopTransactionRequest, now: float
    ) -> tuple[RemoteStopTransactionResponse, Followup]:
        tx = self.transactions.transaction_by_id(request.transaction_id)
        if tx is None:
            return RemoteStopTransactionResponse(status=RemoteStartStopStatus.REJECTED), None
        cid = tx.connector_id
        return (
            RemoteStopTransactionResponse(status=RemoteStartStopStatus.ACCEPTED),
            lambda: self._stop(cid, now, Reason.REMOTE),
        )

    def _stop(self, connector_id: int, now: float, reason: Reason) -> None:
        self.transactions.stop_transaction(connector_id, now, reason)

    def _unlock(
        self, request: UnlockConnectorRequest, now: float
    ) -> tuple[UnlockConnectorResponse, Followup]:
        cid = request.connector_id
        if cid not in self.ctx.points:
            return UnlockConnectorResponse(status=UnlockStatus.UNLOCK_FAILED), None
        return (
            UnlockConnectorResponse(status=UnlockStatus.UNLOCKED),
            lambda: self._release(cid, now),
        )

    def _release(self, connector_id: int, now: float) -> None:
        """UnlockConnector: stop the transaction (UnlockCommand) and free a cable left locked
        after the EV went (the connector is Available again once no EV is plugged in)."""
        self.transactions.stop_transaction(connector_id, now, Reason.UNLOCK_COMMAND)
        point = self.ctx.points[connector_id]
        if point.ev is None and point.finished:
            point.finished = False
            self.ctx.refresh_status(connector_id, now)
