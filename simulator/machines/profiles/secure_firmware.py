"""The Security extension's job part: GetLog and SignedUpdateFirmware (a part of
:class:`~simulator.machines.profiles.security.SecurityHandler`).

Rules (OCPP 1.6 security whitepaper, use cases N01 Retrieve Log Information and L01 Secure
Firmware Update; the jobs themselves are :mod:`simulator.machines.jobs`):

- GetLog: Accepted with the ``filename`` the charger uploads (every log type: the charger
  always has one), then LogStatusNotification Uploading, then Uploaded or UploadFailure, each
  with the request's ``requestId``. A GetLog while an upload of a log is under way cancels that
  one and is answered AcceptedCanceled.
- SignedUpdateFirmware: the signing certificate must chain to an installed
  ManufacturerRootCertificate at the charger's time
  (:func:`~simulator.machines.firmware_signature.check_signing_certificate`): otherwise
  InvalidCertificate, the security event InvalidFirmwareSigningCertificate, and nothing else.
  Else Accepted (AcceptedCanceled when a firmware update was under way: it is cancelled),
  then SignedFirmwareStatusNotifications with the ``requestId``: DownloadScheduled (a
  ``retrieveDateTime`` still to come), Downloading, Downloaded, SignatureVerified or
  InvalidSignature (+ InvalidFirmwareSignature), InstallScheduled (an ``installDateTime``
  still to come), Installing, InstallRebooting, and Installed after the reboot with the new
  ``firmwareVersion`` (+ the security event FirmwareUpdated).
"""

from __future__ import annotations

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.firmware_signature import check_signing_certificate
from simulator.machines.job_details import retry_count, retry_interval, upload_file
from simulator.machines.jobs import Job, JobKind, Jobs, Signed, Stage
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.ocpp.v16 import (
    CertificateUse,
    GetLogRequest,
    GetLogResponse,
    LogStatus,
    Profile,
    SecurityEvent,
    SignedUpdateFirmwareRequest,
    SignedUpdateFirmwareResponse,
    UpdateFirmwareStatus,
)


class SecureFirmwarePart(ProfileHandler):
    """GetLog and SignedUpdateFirmware, a part of the Security handler (see the module
    docstring); the jobs they start run in the charger's :class:`~simulator.machines.jobs.Jobs`
    (whose timers the charger keeps, so this part has none)."""

    profile = Profile.SECURITY

    def __init__(self, ctx: ChargerContext, *, jobs: Jobs) -> None:
        super().__init__(ctx)
        self.jobs = jobs

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to GetLog or SignedUpdateFirmware, and the job to start once sent."""
        match request:
            case GetLogRequest():
                return self._get_log(request, now)
            case SignedUpdateFirmwareRequest():
                return self._signed_update(request, now)
        return None

    def _get_log(self, request: GetLogRequest, now: float) -> Answer:
        log = request.log
        window = (f"{request.log_type.value} from {log.oldest_timestamp or 'the start'} "
                  f"to {log.latest_timestamp or 'now'}",)
        name, body = upload_file(self.ctx, request.log_type.value, now, window)
        job = Job(
            kind=JobKind.LOG, id=self.jobs.new_id(JobKind.LOG), location=log.remote_location,
            stage=Stage.UPLOAD, request_id=request.request_id,
            retries=retry_count(request.retries),
            retry_interval=retry_interval(request.retry_interval),
            timings=self.jobs.timings(), upload=(name, body),
        )
        status = LogStatus.ACCEPTED_CANCELED if self.jobs.running(JobKind.LOG) is not None \
            else LogStatus.ACCEPTED
        return GetLogResponse(status=status, filename=name), lambda: self._start(job, now)

    def _signed_update(self, request: SignedUpdateFirmwareRequest, now: float) -> Answer:
        firmware, ctx = request.firmware, self.ctx
        roots = ctx.installed_certificates.get(CertificateUse.MANUFACTURER_ROOT_CERTIFICATE, [])
        problem = check_signing_certificate(firmware.signing_certificate, roots, ctx.wall(now))
        if problem is not None:
            ctx.note(now, "signing_certificate_refused", request_id=request.request_id,
                     reason=problem)

            def refused() -> None:
                ctx.security_event(SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE, now,
                                   problem)

            return SignedUpdateFirmwareResponse(
                status=UpdateFirmwareStatus.INVALID_CERTIFICATE), refused
        install = firmware.install_date_time
        job = Job(
            kind=JobKind.SIGNED_FIRMWARE, id=self.jobs.new_id(JobKind.SIGNED_FIRMWARE),
            location=firmware.location, stage=Stage.SCHEDULED, request_id=request.request_id,
            retrieve_at=firmware.retrieve_date_time.timestamp(),
            retries=retry_count(request.retries),
            retry_interval=retry_interval(request.retry_interval),
            timings=self.jobs.timings(),
            signed=Signed(certificate=firmware.signing_certificate, signature=firmware.signature,
                          install_at=None if install is None else install.timestamp()),
        )
        status = UpdateFirmwareStatus.ACCEPTED_CANCELED \
            if self.jobs.running(JobKind.SIGNED_FIRMWARE) is not None \
            else UpdateFirmwareStatus.ACCEPTED
        return SignedUpdateFirmwareResponse(status=status), lambda: self._start(job, now)

    def _start(self, job: Job, now: float) -> None:
        self.jobs.start(job, now)

