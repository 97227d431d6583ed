"""A peer central system that sends every central-system-to-charge-point action of OCPP 1.6
and its security extension (26 of the 39), with valid arguments, through the PyPI ``ocpp``
package, which validates each request it sends and each answer it gets.

It is ``peer_csms.py`` (same options, same record, every CP→CS action answered) whose command
script is the *profiles script* below, for identities starting with ``--commands-for``. The
script runs once per charger, across its connections: a step that ends in a reconnect (a
raised SecurityProfile, signed firmware, Reset, firmware) is the last of its connection, and
the charger's next connection goes on with the step after it. Each CALL's outcome is a
``command_result`` record (``response`` the CALLRESULT payload, or ``error`` the CALLERROR /
timeout / failed validation); a wait that ran out is a ``script_wait_timeout`` record;
``commands_done`` ends the script.

The steps, in order (so that each effect can be seen):

1. Core: GetConfiguration, ChangeConfiguration (LocalAuthListEnabled), ClearCache, DataTransfer;
   then an AuthorizationKey (ChangeConfiguration), GetConfiguration of it, and SecurityProfile 1:
   the charger reconnects, with HTTP Basic from then on.
2. LocalAuthListManagement: SendLocalList Full (version 1), Differential (version 2: one tag
   added, one removed), GetLocalListVersion.
3. Reservation: ReserveNow on connector 1 (expiring in two minutes), a wait for its
   StatusNotification Reserved, CancelReservation, a wait for Available.
4. SmartCharging: SetChargingProfile (TxDefaultProfile on connector 0, Absolute, ``--limit-w``
   watts), GetCompositeSchedule of connector 2, RemoteStartTransaction on connector 2 (an EV is
   plugged in there), then while it charges: two periodic MeterValues, TriggerMessage
   MeterValues, GetCompositeSchedule; RemoteStopTransaction; ClearChargingProfile.
5. RemoteTrigger: TriggerMessage of each of the six messages; Core: ChangeAvailability of
   connector 2 (Inoperative, Operative), UnlockConnector.
6. Security: InstallCertificate (the peer's central-system root, its manufacturer root, a spare
   central-system root), GetInstalledCertificateIds, DeleteCertificate of the spare (the hash
   data as the charger listed it, checked against the peer's own computation: a
   ``certificate_hash_data`` record, with the hash data of the two roots that stay),
   GetInstalledCertificateIds again;
   ExtendedTriggerMessage(SignChargePointCertificate), the SignCertificate CSR signed by the
   central-system root (``csr_received`` and ``certificate_issued`` records), CertificateSigned,
   GetInstalledCertificateIds
   of the manufacturer roots; ExtendedTriggerMessage of each other message.
7. FirmwareManagement and logs: GetDiagnostics and GetLog (simulated ``ftp://`` locations), each
   followed by a wait for its final status notification; SignedUpdateFirmware (a signing
   certificate issued by the manufacturer root, see ``peer_crypto.py``), a wait for the reboot;
   Reset (Soft), a wait for the reboot; UpdateFirmware (retrieve now), a wait for the reboot.

Usage (the options of ``peer_csms.py``, and those of :func:`add_options`)::

    python tests/interop/peer_profiles.py --port 0 --record rec.jsonl --ready port.txt \\
        --commands --commands-for PR-
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ocpp.routing import after  # type: ignore[import-untyped]
from ocpp.v16 import call, datatypes  # type: ignore[import-untyped]
from ocpp.v16.enums import (  # type: ignore[import-untyped]
    Action,
    AuthorizationStatus,
    AvailabilityType,
    CertificateUse,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingRateUnitType,
    Log,
    MessageTrigger,
    ResetType,
    UpdateType,
)
from websockets.asyncio.server import ServerConnection

if __package__:  # imported by a test
    from . import peer_crypto
    from .peer_csms import PeerChargePoint, PeerState, main, utc_now
else:  # run as a script: its folder is on sys.path
    import peer_crypto  # type: ignore[no-redef]
    from peer_csms import PeerChargePoint, PeerState, main, utc_now  # type: ignore[no-redef]

CS_TO_CP: Final = (
    "ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer", "GetConfiguration",
    "RemoteStartTransaction", "RemoteStopTransaction", "Reset", "UnlockConnector",
    "GetDiagnostics", "UpdateFirmware", "GetLocalListVersion", "SendLocalList",
    "CancelReservation", "ReserveNow", "ClearChargingProfile", "GetCompositeSchedule",
    "SetChargingProfile", "TriggerMessage", "CertificateSigned", "DeleteCertificate",
    "ExtendedTriggerMessage", "GetInstalledCertificateIds", "GetLog", "InstallCertificate",
    "SignedUpdateFirmware",
)
"""Every action the central system sends (OCPP 1.6 and its security extension)."""

AUTHORIZATION_KEY: Final = "peer-authorization-key-17"
"""The HTTP Basic password the script sets (it must appear in no ledger of the simulator)."""
RESERVED_CONNECTOR: Final = 1
CHARGING_CONNECTOR: Final = 2
"""The connector of the profiled transaction: the test plugs an EV in there."""
RESERVATION_ID: Final = 101
PROFILE_ID: Final = 1
REMOTE_TAG: Final = "REMOTE-PR"
DIAGNOSTICS_LOCATION: Final = "ftp://127.0.0.1/diagnostics"
LOG_LOCATION: Final = "ftp://127.0.0.1/logs"
LOG_REQUEST_ID: Final = 7
SIGNED_FIRMWARE_REQUEST_ID: Final = 8
SIGNED_FIRMWARE_LOCATION: Final = "ftp://127.0.0.1/firmware/signed-2.0.bin"
FIRMWARE_LOCATION: Final = "ftp://127.0.0.1/firmware/3.0.bin"
STATUS_WAIT_S: Final = 5.0
"""How long the script waits for a StatusNotification a step should cause."""
JOB_WAIT_S: Final = 15.0
"""How long it waits for a job's final notification (an upload, a firmware update)."""
REBOOT_WAIT_S: Final = 12.0
"""How long it waits, after a job's end (or a Reset), for the charger to drop the connection."""
RECONNECT_BOOT_WAIT_S: Final = 2.0
"""How long the script waits for a BootNotification on a charger's later connection."""
METER_SAMPLES: Final = 2
"""Periodic MeterValues of the profiled transaction the script waits for before stopping it."""

FIRMWARE_DONE: Final = frozenset({"Installed", "InstallationFailed", "DownloadFailed"})
SIGNED_FIRMWARE_DONE: Final = FIRMWARE_DONE | {
    "InstallVerificationFailed", "InvalidSignature", "InstallRebooting"}
DIAGNOSTICS_DONE: Final = frozenset({"Uploaded", "UploadFailed"})
LOG_DONE: Final = frozenset({"Uploaded", "UploadFailure", "BadMessage", "NotSupportedOperation",
                             "PermissionDenied"})
TRIGGERED: Final = (
    MessageTrigger.boot_notification, MessageTrigger.diagnostics_status_notification,
    MessageTrigger.firmware_status_notification, MessageTrigger.heartbeat,
    MessageTrigger.meter_values, MessageTrigger.status_notification,
)
"""What TriggerMessage may ask for."""
EXTENDED_TRIGGERED: Final = (
    MessageTrigger.boot_notification, MessageTrigger.firmware_status_notification,
    MessageTrigger.heartbeat, MessageTrigger.log_status_notification,
    MessageTrigger.meter_values, MessageTrigger.status_notification,
)
"""What ExtendedTriggerMessage may ask for, but SignChargePointCertificate (a step of its own)."""

Payload = dict[str, Any]
Step = tuple[str, Callable[[], Awaitable[None]]]


def in_seconds(seconds: float) -> str:
    """UTC ``seconds`` from now, as the schemas want a date-time."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass
class ProfilesShared:
    """What every connection of the profiles peer shares: its options, its authorities, and
    each charger's place in the script."""

    limit_w: float
    chain_with_root: bool
    central: peer_crypto.Authority
    spare: peer_crypto.Authority
    signer: peer_crypto.FirmwareSigner
    next_step: dict[str, int] = dataclasses.field(default_factory=dict)
    """Identity -> index of the next step to run (one past the last, once done)."""


class ProfilesChargePoint(PeerChargePoint):  # type: ignore[misc]  # its base has no hints
    """``peer_csms``'s charge point, whose command script is the profiles script."""

    def __init__(self, identity: str, connection: ServerConnection, state: PeerState,
                 shared: ProfilesShared) -> None:
        super().__init__(identity, connection, state)
        self.shared = shared
        self.calls: list[tuple[str, Payload]] = []
        """(action, payload) of every CALL the charger sent on this connection, in order."""
        self.calls_changed = asyncio.Event()
        self.csrs: asyncio.Queue[str] = asyncio.Queue()
        """The CSR of each SignCertificate, once its answer is on the wire."""

    def _record_received(self, raw_msg: str | bytes) -> None:
        super()._record_received(raw_msg)
        with contextlib.suppress(ValueError):
            frame = json.loads(raw_msg)
            if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2 \
                    and isinstance(frame[3], dict):
                self.calls.append((str(frame[2]), frame[3]))
                changed, self.calls_changed = self.calls_changed, asyncio.Event()
                changed.set()

    @after(Action.sign_certificate)  # type: ignore[misc]
    def after_sign_certificate(self, csr: str, **_: Any) -> None:
        self.csrs.put_nowait(csr)

    # ---- waiting ----------------------------------------------------------------------------

    async def wait_call(self, action: str, match: Callable[[Payload], bool], wait_s: float,
                        since: int = 0, why: str = "") -> Payload | None:
        """The first CALL ``action`` from index ``since`` on whose payload ``match``es, waiting
        up to ``wait_s`` seconds for it; ``None`` (and a ``script_wait_timeout`` record) when
        none came."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                while True:
                    for seen, payload in self.calls[since:]:
                        if seen == action and match(payload):
                            return payload
                    await self.calls_changed.wait()
        self.state.recorder.write("script_wait_timeout", charger=self.identity, action=action,
                                  why=why, timeout=wait_s)
        return None

    async def wait_status(self, connector: int, status: str, since: int) -> None:
        await self.wait_call(
            "StatusNotification",
            lambda p: p.get("connectorId") == connector and p.get("status") == status,
            STATUS_WAIT_S, since, why=f"connector {connector} {status}")

    async def wait_reboot(self, done: str, statuses: frozenset[str], since: int) -> None:
        """Wait for the job's final ``done`` notification, then for the connection to drop (the
        script task is cancelled then: the charger's next connection goes on)."""
        await self.wait_call(done, lambda p: p.get("status") in statuses, JOB_WAIT_S, since,
                             why=f"{done} in {sorted(statuses)}")
        await asyncio.sleep(REBOOT_WAIT_S)
        self.state.recorder.write("script_wait_timeout", charger=self.identity, action=done,
                                  why="no reboot", timeout=REBOOT_WAIT_S)

    # ---- the script -------------------------------------------------------------------------

    async def run_commands(self) -> None:
        """Run the profiles script from this charger's next step (see the module docstring),
        once its boot is accepted; a charger that reconnects without rebooting (a raised
        SecurityProfile) sends no BootNotification: after :data:`RECONNECT_BOOT_WAIT_S`, the
        script goes on without one."""
        progress = self.shared.next_step
        if self.identity in progress:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECONNECT_BOOT_WAIT_S):
                    await self.booted.wait()
        else:
            await self.booted.wait()
        steps = self.steps()
        while (index := progress.get(self.identity, 0)) < len(steps):
            progress[self.identity] = index + 1  # a step a reboot cut short is not run again
            name, step = steps[index]
            self.state.recorder.write("script_step", charger=self.identity, step=name,
                                      index=index)
            await step()
        if progress.get(self.identity) == len(steps):
            progress[self.identity] = len(steps) + 1
            self.state.recorder.write("commands_done", charger=self.identity)

    def steps(self) -> list[Step]:
        """The script, in order."""
        return [
            ("core", self.core),
            ("security_profile", self.security_profile),
            ("local_list", self.local_list),
            ("reservation", self.reservation),
            ("smart_charging", self.smart_charging),
            ("triggers", self.triggers),
            ("availability", self.availability),
            ("certificates", self.certificates),
            ("sign_certificate", self.sign_certificate),
            ("extended_triggers", self.extended_triggers),
            ("diagnostics_and_log", self.diagnostics_and_log),
            ("signed_firmware", self.signed_firmware),
            ("reset", self.reset),
            ("firmware", self.firmware),
        ]

    async def core(self) -> None:
        await self.command(call.GetConfiguration())
        await self.command(call.ChangeConfiguration(key="LocalAuthListEnabled", value="true"))
        await self.command(call.ClearCache())
        await self.command(call.DataTransfer(vendor_id="peer-csms", message_id="ping"))

    async def security_profile(self) -> None:
        """An AuthorizationKey, then SecurityProfile 1: the charger reconnects with HTTP Basic
        (the wait for that is cancelled by the reconnect)."""
        await self.command(call.ChangeConfiguration(key="AuthorizationKey",
                                                    value=AUTHORIZATION_KEY))
        await self.command(call.GetConfiguration(key=["AuthorizationKey", "SecurityProfile"]))
        raised = await self.command(call.ChangeConfiguration(key="SecurityProfile", value="1"))
        if raised is not None and raised.get("status") == "Accepted":
            await asyncio.sleep(REBOOT_WAIT_S)
            self.state.recorder.write("script_wait_timeout", charger=self.identity,
                                      action="ChangeConfiguration", why="no reconnect",
                                      timeout=REBOOT_WAIT_S)

    async def local_list(self) -> None:
        accepted = datatypes.IdTagInfo(status=AuthorizationStatus.accepted)
        blocked = datatypes.IdTagInfo(status=AuthorizationStatus.blocked)
        await self.command(call.SendLocalList(
            list_version=1, update_type=UpdateType.full, local_authorization_list=[
                datatypes.AuthorizationData(id_tag="LOCAL-1", id_tag_info=accepted),
                datatypes.AuthorizationData(id_tag="LOCAL-2", id_tag_info=blocked),
            ]))
        await self.command(call.SendLocalList(
            list_version=2, update_type=UpdateType.differential, local_authorization_list=[
                datatypes.AuthorizationData(id_tag="LOCAL-3", id_tag_info=accepted),
                datatypes.AuthorizationData(id_tag="LOCAL-2"),  # no idTagInfo: removed
            ]))
        await self.command(call.GetLocalListVersion())

    async def reservation(self) -> None:
        since = len(self.calls)
        reserved = await self.command(call.ReserveNow(
            connector_id=RESERVED_CONNECTOR, expiry_date=in_seconds(120), id_tag="RES-1",
            reservation_id=RESERVATION_ID))
        if reserved is not None and reserved.get("status") == "Accepted":
            await self.wait_status(RESERVED_CONNECTOR, "Reserved", since)
        since = len(self.calls)
        cancelled = await self.command(call.CancelReservation(reservation_id=RESERVATION_ID))
        if cancelled is not None and cancelled.get("status") == "Accepted":
            await self.wait_status(RESERVED_CONNECTOR, "Available", since)

    async def smart_charging(self) -> None:
        schedule = datatypes.ChargingSchedule(
            charging_rate_unit=ChargingRateUnitType.watts, start_schedule=in_seconds(-60),
            charging_schedule_period=[datatypes.ChargingSchedulePeriod(
                start_period=0, limit=self.shared.limit_w)])
        await self.command(call.SetChargingProfile(
            connector_id=0, cs_charging_profiles=datatypes.ChargingProfile(
                charging_profile_id=PROFILE_ID, stack_level=0,
                charging_profile_purpose=ChargingProfilePurposeType.tx_default_profile,
                charging_profile_kind=ChargingProfileKindType.absolute,
                charging_schedule=schedule)))
        await self.command(call.GetCompositeSchedule(
            connector_id=CHARGING_CONNECTOR, duration=600,
            charging_rate_unit=ChargingRateUnitType.watts))
        await self.profiled_transaction()
        await self.command(call.ClearChargingProfile(id=PROFILE_ID))

    async def profiled_transaction(self) -> None:
        """RemoteStart on the charging connector, a few samples, RemoteStop."""
        while not self.started_transactions.empty():
            self.started_transactions.get_nowait()
        started = await self.command(call.RemoteStartTransaction(
            id_tag=REMOTE_TAG, connector_id=CHARGING_CONNECTOR))
        if started is None or started.get("status") != "Accepted":
            return
        transaction_id = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.state.start_wait):
                while transaction_id is None:
                    connector, tx, tag = await self.started_transactions.get()
                    if connector == CHARGING_CONNECTOR and tag == REMOTE_TAG:
                        transaction_id = tx
        if transaction_id is None:
            self._script_gave_up("RemoteStopTransaction", "NoStartTransaction",
                                 f"no StartTransaction within {self.state.start_wait}s")
            return
        since = len(self.calls)
        for _ in range(METER_SAMPLES):
            sample = await self.wait_call(
                "MeterValues", lambda p: p.get("transactionId") == transaction_id, STATUS_WAIT_S,
                since, why="a sample of the profiled transaction")
            since = len(self.calls)
            if sample is None:
                break
        await self.command(call.TriggerMessage(requested_message=MessageTrigger.meter_values,
                                               connector_id=CHARGING_CONNECTOR))
        await self.command(call.GetCompositeSchedule(
            connector_id=CHARGING_CONNECTOR, duration=600,
            charging_rate_unit=ChargingRateUnitType.watts))
        since = len(self.calls)
        stopped = await self.command(call.RemoteStopTransaction(transaction_id=transaction_id))
        if stopped is not None and stopped.get("status") == "Accepted":
            await self.wait_call("StopTransaction",
                                 lambda p: p.get("transactionId") == transaction_id,
                                 STATUS_WAIT_S, since, why="the remote stop")

    async def triggers(self) -> None:
        for wanted in TRIGGERED:
            per_connector = wanted in (MessageTrigger.meter_values,
                                       MessageTrigger.status_notification)
            await self.command(call.TriggerMessage(
                requested_message=wanted,
                connector_id=RESERVED_CONNECTOR if per_connector else None))

    async def availability(self) -> None:
        await self.command(call.ChangeAvailability(connector_id=CHARGING_CONNECTOR,
                                                   type=AvailabilityType.inoperative))
        await self.command(call.ChangeAvailability(connector_id=CHARGING_CONNECTOR,
                                                   type=AvailabilityType.operative))
        await self.command(call.UnlockConnector(connector_id=CHARGING_CONNECTOR))

    async def certificates(self) -> None:
        central = CertificateUse.central_system_root_certificate
        shared = self.shared
        await self.command(call.InstallCertificate(certificate_type=central,
                                                   certificate=shared.central.pem))
        await self.command(call.InstallCertificate(
            certificate_type=CertificateUse.manufacturer_root_certificate,
            certificate=shared.signer.root.pem))
        await self.command(call.InstallCertificate(certificate_type=central,
                                                   certificate=shared.spare.pem))
        listed = await self.command(call.GetInstalledCertificateIds(certificate_type=central))
        ours = peer_crypto.hash_data(shared.spare.certificate, shared.spare.certificate)
        theirs = [entry for entry in (listed or {}).get("certificateHashData", [])
                  if peer_crypto.same_hash_data(entry, ours)]
        roots = {name: peer_crypto.hash_data(authority.certificate, authority.certificate)
                 for name, authority in (("central", shared.central),
                                         ("manufacturer", shared.signer.root))}
        self.state.recorder.write("certificate_hash_data", charger=self.identity, ours=ours,
                                  listed=(listed or {}).get("certificateHashData"),
                                  matched=bool(theirs), **roots)
        # Delete what the charger listed (as a central system would), else what we computed.
        delete = theirs[0] if theirs else ours
        await self.command(call.DeleteCertificate(certificate_hash_data={
            "hash_algorithm": delete["hashAlgorithm"],
            "issuer_name_hash": delete["issuerNameHash"],
            "issuer_key_hash": delete["issuerKeyHash"],
            "serial_number": delete["serialNumber"],
        }))
        await self.command(call.GetInstalledCertificateIds(certificate_type=central))

    async def sign_certificate(self) -> None:
        """ExtendedTriggerMessage(SignChargePointCertificate), then the CSR it brings signed by
        the central-system root, sent back in CertificateSigned."""
        while not self.csrs.empty():
            self.csrs.get_nowait()
        triggered = await self.command(call.ExtendedTriggerMessage(
            requested_message=MessageTrigger.sign_charge_point_certificate))
        if triggered is None or triggered.get("status") != "Accepted":
            # No CSR will come; a charger without the Security profile must still refuse this.
            await self.command(call.CertificateSigned(certificate_chain=self.shared.central.pem))
            return
        try:
            async with asyncio.timeout(JOB_WAIT_S):
                csr = await self.csrs.get()
        except TimeoutError:
            self._script_gave_up("CertificateSigned", "NoSignCertificate",
                                 f"no SignCertificate within {JOB_WAIT_S}s")
            return
        try:
            self.state.recorder.write("csr_received", charger=self.identity,
                                      **peer_crypto.csr_summary(csr))
            leaf = self.shared.central.sign_csr(csr)
        except ValueError as exc:
            self._script_gave_up("CertificateSigned", "BadCsr", str(exc))
            return
        self.state.recorder.write("certificate_issued", charger=self.identity,
                                  subject=leaf.subject.rfc4514_string(),
                                  serial=format(leaf.serial_number, "x"))
        chain = peer_crypto.pem(leaf) + (self.shared.central.pem
                                         if self.shared.chain_with_root else "")
        await self.command(call.CertificateSigned(certificate_chain=chain))
        await self.command(call.GetInstalledCertificateIds(
            certificate_type=CertificateUse.manufacturer_root_certificate))

    async def extended_triggers(self) -> None:
        for wanted in EXTENDED_TRIGGERED:
            per_connector = wanted in (MessageTrigger.meter_values,
                                       MessageTrigger.status_notification)
            await self.command(call.ExtendedTriggerMessage(
                requested_message=wanted,
                connector_id=RESERVED_CONNECTOR if per_connector else None))

    async def diagnostics_and_log(self) -> None:
        since = len(self.calls)
        if await self.command(call.GetDiagnostics(location=DIAGNOSTICS_LOCATION)) is not None:
            await self.wait_call("DiagnosticsStatusNotification",
                                 lambda p: p.get("status") in DIAGNOSTICS_DONE, JOB_WAIT_S,
                                 since, why="the diagnostics upload's end")
        since = len(self.calls)
        log = await self.command(call.GetLog(
            log={"remote_location": LOG_LOCATION}, log_type=Log.diagnostics_log,
            request_id=LOG_REQUEST_ID))
        if log is not None and log.get("status") in ("Accepted", "AcceptedCanceled"):
            await self.wait_call("LogStatusNotification",
                                 lambda p: p.get("status") in LOG_DONE, JOB_WAIT_S, since,
                                 why="the log upload's end")

    async def signed_firmware(self) -> None:
        signer = self.shared.signer
        since = len(self.calls)
        answer = await self.command(call.SignedUpdateFirmware(
            request_id=SIGNED_FIRMWARE_REQUEST_ID, firmware={
                "location": SIGNED_FIRMWARE_LOCATION, "retrieve_date_time": utc_now(),
                "signing_certificate": peer_crypto.pem(signer.certificate),
                "signature": signer.sign(SIGNED_FIRMWARE_LOCATION),
            }))
        if answer is not None and answer.get("status") == "Accepted":
            await self.wait_reboot("SignedFirmwareStatusNotification", SIGNED_FIRMWARE_DONE,
                                   since)

    async def reset(self) -> None:
        answer = await self.command(call.Reset(type=ResetType.soft))
        if answer is not None and answer.get("status") == "Accepted":
            await asyncio.sleep(REBOOT_WAIT_S)
            self.state.recorder.write("script_wait_timeout", charger=self.identity,
                                      action="Reset", why="no reboot", timeout=REBOOT_WAIT_S)

    async def firmware(self) -> None:
        since = len(self.calls)
        answer = await self.command(call.UpdateFirmware(location=FIRMWARE_LOCATION,
                                                        retrieve_date=utc_now()))
        if answer is not None:
            await self.wait_reboot("FirmwareStatusNotification", FIRMWARE_DONE, since)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The profiles script's own options."""
    parser.add_argument("--limit-w", type=float, default=1380.0,
                        help="the TxDefaultProfile's limit, in W (a multiple of 0.1)")
    parser.add_argument("--chain-with-root", action="store_true",
                        help="CertificateSigned's chain ends with the root, not only the leaf")
    parser.add_argument("--signing-key", choices=["ec", "rsa"], default="ec",
                        help="the key type of the firmware signing certificate")


def factory(args: argparse.Namespace) -> Callable[[str, ServerConnection, PeerState],
                                                   ProfilesChargePoint]:
    """What makes each connection's charge point, sharing one :class:`ProfilesShared`."""
    shared = ProfilesShared(
        limit_w=args.limit_w, chain_with_root=args.chain_with_root,
        central=peer_crypto.Authority.create("Peer CSMS root"),
        spare=peer_crypto.Authority.create("Peer CSMS spare root"),
        signer=peer_crypto.FirmwareSigner.create(
            peer_crypto.Authority.create("Peer manufacturer root"), args.signing_key),
    )

    def make(identity: str, connection: ServerConnection,
             state: PeerState) -> ProfilesChargePoint:
        return ProfilesChargePoint(identity, connection, state, shared)

    return make


if __name__ == "__main__":
    main(sys.argv[1:], extend=add_options, make_for=factory)
