"""The charger's long-running jobs: firmware updates, diagnostics and log uploads.

:class:`Jobs` runs, at most one of each at a time, an UpdateFirmware or SignedUpdateFirmware
(they share the firmware: a new one cancels the other), a GetDiagnostics upload and a GetLog
upload. Each is a small timed state machine; its status goes to the central system in the
job's notification and is kept in ``ctx.activities`` for the triggers (None, reported as Idle,
once the job ended). The transitions are :data:`NEXT` (a stage that ends well), the statuses
:data:`ENTERED`, :data:`PASSED` and :data:`FAILED`. Rules:

- **Stages.** A download waits for its retrieve date (on the charger's clock), then
  Downloading lasts ``[group.firmware] download`` seconds and ends Downloaded or, with the
  probability ``download_failure`` (drawn from the charger's seeded stream), DownloadFailed;
  installing lasts ``install`` seconds and fails with ``install_failure`` (InstallationFailed);
  an upload lasts ``upload`` seconds and fails with ``upload_failure`` (UploadFailed for
  diagnostics, UploadFailure for a log). Signed firmware adds DownloadScheduled (a retrieve
  date still to come), the signature check when downloaded (SignatureVerified, or
  InvalidSignature and the security event InvalidFirmwareSignature; see
  :mod:`.firmware_signature`), InstallScheduled (an ``installDateTime`` still to come) and
  InstallRebooting.
- **Retries.** A failed download or upload is tried again after ``retryInterval`` seconds
  (:data:`DEFAULT_RETRY_INTERVAL` when absent), ``retries`` more times (none when absent); the
  status stays Downloading/Uploading meanwhile and the failure is reported after the last try.
  An installation is not retried.
- **Reboot.** An installed firmware is activated by a reboot: the job reports Installed
  (UpdateFirmware) or InstallRebooting (signed), waits until that report is on its way (or
  ``call_timeout`` seconds), then takes the soft reboot path: running transactions are stopped
  with reason Reboot and their StopTransactions delivered first (the charger does not wait for
  sessions to end: a CSMS sees the update happen). At the next power-on the charger has the
  new ``firmwareVersion`` (derived from the location:
  :func:`~simulator.machines.job_details.firmware_version_of`), raises the security event
  FirmwareUpdated, and a signed update reports Installed.
- **Other reboots.** A reboot keeps a job that waits for a date and interrupts any other: it
  ends with the failure status of its stage (a download's DownloadFailed, an installation's
  InstallationFailed, an upload's failure), reported after the boot.
- **Reporting.** A status goes out at once while connected and Accepted; otherwise the latest
  one of each notification waits and goes out as soon as the charger is connected and Accepted
  again (the current status, not the history: ``job_status_deferred`` notes the others).
- **Real transfers** (``real_transfers`` and an http(s) location): the download or upload is a
  :class:`~simulator.machines.effects.Transfer` the actor carries out; the step ends when
  :meth:`Jobs.transfer_done` brings its outcome (no draw, no timer). A download's bytes are
  the firmware whose signature is checked; simulated, the firmware is the location's bytes.
  An upload PUTs a small generated file
  (:func:`~simulator.machines.job_details.upload_file`) to ``location/fileName``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import enum
import urllib.parse
from typing import Final

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.effects import Transfer, TransferKind, redacted_url
from simulator.machines.firmware_signature import simulated_firmware, verify_firmware_signature
from simulator.machines.job_details import (
    DEFAULT_RETRY_INTERVAL,
    MAX_RETRIES,
    firmware_version_of,
    upload_url,
)
from simulator.machines.parts import earliest
from simulator.machines.reboot import RebootSequence
from simulator.ocpp.v16 import (
    DiagnosticsStatus,
    DiagnosticsStatusNotificationRequest,
    FirmwareStatus,
    FirmwareStatusNotificationRequest,
    LogStatusNotificationRequest,
    Reason,
    SecurityEvent,
    SignedFirmwareStatusNotificationRequest,
    UploadLogStatus,
)
from simulator.seeds import Rng

TRANSFER_TIMEOUT: Final = 60.0
"""Seconds a real transfer may take before the actor gives up (a failed try)."""
MAX_STEPS_PER_DUE: Final = 2 * MAX_RETRIES + 16
"""A bound on the stage changes of one job in one :meth:`Jobs.due`: every try and retry wait
of a job whose steps last no time at all, and its other stages."""


class JobKind(enum.StrEnum):
    """What a job does, and the notification it reports with."""

    FIRMWARE = "firmware"  # UpdateFirmware: FirmwareStatusNotification
    SIGNED_FIRMWARE = "signed_firmware"  # SignedUpdateFirmware: SignedFirmwareStatusNotification
    DIAGNOSTICS = "diagnostics"  # GetDiagnostics: DiagnosticsStatusNotification
    LOG = "log"  # GetLog: LogStatusNotification


class Stage(enum.StrEnum):
    """Where a job is."""

    SCHEDULED = "scheduled"  # waits for the retrieve date
    DOWNLOAD = "download"
    DOWNLOADED = "downloaded"  # then the signature check (signed) or the installation
    INSTALL_SCHEDULED = "install_scheduled"  # signed: waits for installDateTime
    INSTALL = "install"
    REBOOT = "reboot"  # waits for its report, reboots; the next power-on activates it
    UPLOAD = "upload"


_FW, _SIGNED, _DIAG, _LOG = JobKind
_S = Stage
_F = FirmwareStatus

NEXT: Final[dict[tuple[JobKind, Stage], Stage | None]] = {
    (_FW, _S.SCHEDULED): _S.DOWNLOAD, (_FW, _S.DOWNLOAD): _S.DOWNLOADED,
    (_FW, _S.DOWNLOADED): _S.INSTALL, (_FW, _S.INSTALL): _S.REBOOT, (_FW, _S.REBOOT): None,
    (_SIGNED, _S.SCHEDULED): _S.DOWNLOAD, (_SIGNED, _S.DOWNLOAD): _S.DOWNLOADED,
    (_SIGNED, _S.DOWNLOADED): _S.INSTALL_SCHEDULED, (_SIGNED, _S.INSTALL_SCHEDULED): _S.INSTALL,
    (_SIGNED, _S.INSTALL): _S.REBOOT, (_SIGNED, _S.REBOOT): None,
    (_DIAG, _S.UPLOAD): None, (_LOG, _S.UPLOAD): None,
}
"""The stage after one that ends well (None: the job is done)."""

ENTERED: Final[dict[tuple[JobKind, Stage], enum.StrEnum]] = {
    (_FW, _S.DOWNLOAD): _F.DOWNLOADING, (_FW, _S.DOWNLOADED): _F.DOWNLOADED,
    (_FW, _S.INSTALL): _F.INSTALLING, (_FW, _S.REBOOT): _F.INSTALLED,
    (_SIGNED, _S.SCHEDULED): _F.DOWNLOAD_SCHEDULED, (_SIGNED, _S.DOWNLOAD): _F.DOWNLOADING,
    (_SIGNED, _S.DOWNLOADED): _F.DOWNLOADED, (_SIGNED, _S.INSTALL_SCHEDULED): _F.INSTALL_SCHEDULED,
    (_SIGNED, _S.INSTALL): _F.INSTALLING, (_SIGNED, _S.REBOOT): _F.INSTALL_REBOOTING,
    (_DIAG, _S.UPLOAD): DiagnosticsStatus.UPLOADING, (_LOG, _S.UPLOAD): UploadLogStatus.UPLOADING,
}
"""The status reported on entering a stage (a wait for a date only when there is one to wait)."""

PASSED: Final[dict[tuple[JobKind, Stage], enum.StrEnum]] = {
    (_SIGNED, _S.DOWNLOADED): _F.SIGNATURE_VERIFIED, (_SIGNED, _S.REBOOT): _F.INSTALLED,
    (_DIAG, _S.UPLOAD): DiagnosticsStatus.UPLOADED, (_LOG, _S.UPLOAD): UploadLogStatus.UPLOADED,
}
"""The status reported when a stage ends well, before the next is entered."""

FAILED: Final[dict[tuple[JobKind, Stage], enum.StrEnum]] = {
    (_FW, _S.DOWNLOAD): _F.DOWNLOAD_FAILED, (_FW, _S.DOWNLOADED): _F.DOWNLOAD_FAILED,
    (_FW, _S.INSTALL): _F.INSTALLATION_FAILED,
    (_SIGNED, _S.DOWNLOAD): _F.DOWNLOAD_FAILED, (_SIGNED, _S.DOWNLOADED): _F.INVALID_SIGNATURE,
    (_SIGNED, _S.INSTALL): _F.INSTALLATION_FAILED,
    (_DIAG, _S.UPLOAD): DiagnosticsStatus.UPLOAD_FAILED,
    (_LOG, _S.UPLOAD): UploadLogStatus.UPLOAD_FAILURE,
}
"""The status a job ends with when its stage fails (or a reboot interrupts it)."""

_WAITS: Final = frozenset({Stage.SCHEDULED, Stage.INSTALL_SCHEDULED})
"""Stages that wait for a date: they survive a reboot."""


@dataclasses.dataclass(frozen=True, slots=True)
class Timings:
    """Seconds each stage lasts (``downloaded``: from Downloaded to the next stage)."""

    download: float
    install: float
    upload: float
    downloaded: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Signed:
    """What a signed firmware is checked with: the signing certificate (PEM) and the base64
    signature, and when to install it (Unix seconds on the charger's clock; None: at once)."""

    certificate: str
    signature: str
    install_at: float | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class Job:
    """One job (see the module docstring). ``until``: when the current stage (or the wait
    before a retry, ``retrying``) ends on its own; None while it waits for a date
    (``wall_until``, Unix seconds on the charger's clock), a real transfer (``transfer``) or
    the reboot."""

    kind: JobKind
    id: str
    location: str | None
    stage: Stage
    request_id: int | None = None
    retrieve_at: float | None = None
    retries: int = 0
    retry_interval: float = DEFAULT_RETRY_INTERVAL
    timings: Timings
    signed: Signed | None = None
    upload: tuple[str, bytes] | None = None
    fail_at: Stage | None = None
    """The stage that fails whatever the draw (the ``firmware_failure`` fault)."""
    injection: str | None = None
    until: float | None = None
    wall_until: float | None = None
    retrying: bool = False
    attempt: int = 0
    transfer: str | None = None
    data: bytes | None = None
    rebooting: bool = False


def _slot(kind: JobKind) -> JobKind:
    """Jobs that exclude each other share a slot: the two firmware updates."""
    return _FW if kind == _SIGNED else kind


class Jobs:
    """The charger's running jobs (see the module docstring).

    Args:
        ctx: the charger's shared context (session, activities, clock, firmware version).
        rng: the stream the failure draws come from.
        reboots: the reboot sequence that activates an installed firmware.
    """

    def __init__(self, ctx: ChargerContext, rng: Rng, *, reboots: RebootSequence) -> None:
        self.ctx = ctx
        self._rng = rng
        self.reboots = reboots
        self._jobs: dict[JobKind, Job] = {}
        """The running job of each slot."""
        self._unsent: dict[JobKind, msgspec.Struct] = {}
        """The latest status of each notification not sent yet (offline, not Accepted)."""
        self._serial = 0

    # --- starting jobs ------------------------------------------------------------------------

    def new_id(self, kind: JobKind) -> str:
        """A fresh job id (``firmware-1``, ``log-2`` ...)."""
        self._serial += 1
        return f"{kind.value}-{self._serial}"

    def running(self, kind: JobKind) -> Job | None:
        """The job running in ``kind``'s slot (a firmware update: either kind), if any."""
        return self._jobs.get(_slot(kind))

    def start(self, job: Job, now: float) -> Job | None:
        """Run ``job``; it replaces (cancels) the job of its slot, which is returned."""
        old = self._jobs.pop(_slot(job.kind), None)
        if old is not None:
            self._set_activity(old, None)
            self._note(now, "job_cancelled", old, replaced_by=job.id)
        self._jobs[_slot(job.kind)] = job
        self._note(now, "job_started", job,
                   location=None if job.location is None else redacted_url(job.location))
        self._enter(job, job.stage, now)
        return old

    def timings(self) -> Timings:
        """The stage durations of the charger's ``[group.firmware]``."""
        firmware = self.ctx.spec.firmware
        return Timings(download=firmware.download, install=firmware.install,
                       upload=firmware.upload)

    # --- inputs -------------------------------------------------------------------------------

    def transfer_done(self, transfer: str, ok: bool, data: bytes | None, now: float,
                      detail: str = "") -> None:
        """The real transfer ``transfer`` ended (``data``: a download's bytes): its step ends
        well or fails. Ignored (noted) when its step ended since or the charger is down."""
        job = next((j for j in self._jobs.values() if j.transfer == transfer), None)
        if job is None or not self.ctx.powered:
            self.ctx.note(now, "transfer_ignored", transfer=transfer, ok=ok,
                          reason="its job step ended" if job is None else "charger down")
            return
        job.transfer = None
        self._note(now, "transfer_done", job, ok=ok, detail=detail,
                   bytes=None if data is None else len(data))
        if ok and job.stage == Stage.DOWNLOAD:
            job.data = data
        self._stage_over(job, now, ok=ok, detail=detail)
        self._flush(now)

    def powered_on(self, now: float) -> None:
        """A (re)boot: activate an installed firmware, interrupt what was under way (see the
        module docstring)."""
        for job in list(self._jobs.values()):
            if job.stage == Stage.REBOOT:
                version = firmware_version_of(job.location or job.id)
                self.ctx.firmware_version = version
                self.ctx.security_event(SecurityEvent.FIRMWARE_UPDATED, now,
                                        f"firmwareVersion {version}")
                self._stage_over(job, now, ok=True)
            elif job.stage not in _WAITS:
                job.transfer = None
                self._end(job, FAILED.get((job.kind, job.stage)), now, "interrupted by a reboot")
            else:
                job.until = None

    # --- time ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`due` has something to do, or None."""
        if not self._jobs:
            return None
        offset = self.ctx.wall_offset
        return earliest(*[
            job.until if job.wall_until is None else job.wall_until - offset
            for job in self._jobs.values()
        ])

    def due(self, now: float) -> None:
        """End the stages that are over by ``now``, reboot for an installed firmware when its
        report is on its way, and send the statuses that waited."""
        if not self.ctx.powered:
            return
        for job in list(self._jobs.values()):
            for _ in range(MAX_STEPS_PER_DUE):
                if self._jobs.get(_slot(job.kind)) is not job or not self._step(job, now):
                    break
        self._flush(now)

    def _step(self, job: Job, now: float) -> bool:
        """Take ``job``'s next step if it is due; whether one was taken."""
        if job.stage == Stage.REBOOT:
            self._maybe_reboot(job, now)
            return False
        if job.wall_until is not None:
            if now < job.wall_until - self.ctx.wall_offset:  # as next_deadline computes it
                return False
            job.wall_until = None
        elif job.until is None or now < job.until:
            return False
        job.until = None
        if job.retrying:
            job.retrying = False
            self._attempt(job, now)
        else:
            self._stage_over(job, now)
        return True

    def _maybe_reboot(self, job: Job, now: float) -> None:
        session = self.ctx.session
        if job.rebooting:
            return
        reported = session.pending is None and not session.queued_actions()
        if reported or not session.online or (job.until is not None and now >= job.until):
            job.rebooting = True
            job.until = None
            self._note(now, "firmware_reboot", job)
            self.reboots.begin(now, Reason.REBOOT, hard=False, note="firmware_reboot")

    # --- stages -------------------------------------------------------------------------------

    def _enter(self, job: Job, stage: Stage, now: float) -> None:
        job.stage = stage
        job.until = job.wall_until = None
        if stage in _WAITS:
            wall = job.retrieve_at if stage == Stage.SCHEDULED else \
                job.signed.install_at if job.signed is not None else None
            if wall is None or now >= wall - self.ctx.wall_offset:
                self._stage_over(job, now)  # nothing to wait for
                return
            job.wall_until = wall
        status = ENTERED.get((job.kind, stage))
        if status is not None:
            self._report(job, status, now)
        match stage:
            case Stage.DOWNLOAD | Stage.UPLOAD:
                job.attempt = 0
                self._attempt(job, now)
            case Stage.DOWNLOADED:
                job.until = now + job.timings.downloaded
            case Stage.INSTALL:
                job.until = now + job.timings.install
            case Stage.REBOOT:
                job.until = now + self.ctx.spec.call_timeout

    def _attempt(self, job: Job, now: float) -> None:
        """Start one try of a download or upload: a real transfer, or a timer."""
        job.attempt += 1
        download = job.stage == Stage.DOWNLOAD
        url = job.location if download or job.upload is None or job.location is None \
            else upload_url(job.location, job.upload[0])
        if url is not None and self._real(url):
            job.transfer = f"{job.id}/{job.attempt}"
            self.ctx.effects.append(Transfer(
                job=job.transfer, kind=TransferKind.DOWNLOAD if download else TransferKind.UPLOAD,
                url=url, body=None if download or job.upload is None else job.upload[1],
                timeout=TRANSFER_TIMEOUT,
            ))
            return
        job.until = now + (job.timings.download if download else job.timings.upload)

    def _real(self, url: str) -> bool:
        """Whether ``url`` is really fetched or uploaded (a location that does not parse is
        simulated: the CSMS's input never crashes the charger)."""
        if not self.ctx.spec.real_transfers:
            return False
        try:
            scheme = urllib.parse.urlsplit(url).scheme.lower()
        except ValueError:
            return False
        return scheme in ("http", "https")

    def _stage_over(self, job: Job, now: float, *, ok: bool | None = None,
                    detail: str = "") -> None:
        """``job``'s stage ended (``ok``: the outcome of a real transfer; None: decide it)."""
        stage, key = job.stage, (job.kind, job.stage)
        if ok is None:
            ok = self._succeeds(job)
        if not ok:
            if stage in (Stage.DOWNLOAD, Stage.UPLOAD) and job.attempt <= job.retries:
                job.retrying = True
                job.until = now + job.retry_interval
                self._note(now, "job_retry", job, attempt=job.attempt, detail=detail)
                return
            if key == (_SIGNED, Stage.DOWNLOADED):
                self.ctx.security_event(SecurityEvent.INVALID_FIRMWARE_SIGNATURE, now,
                                        f"firmware {redacted_url(job.location or '')}"[:255])
            self._end(job, FAILED.get(key), now, detail or f"{stage.value} failed")
            return
        if key in PASSED:
            self._report(job, PASSED[key], now)
        following = NEXT.get(key)
        if following is None:
            self._end(job, None, now, "done")
        else:
            self._enter(job, following, now)

    def _succeeds(self, job: Job) -> bool:
        """Whether the stage that ends now (not a real transfer) ends well: the signature
        check, the stage a fault fails, or a draw against the stage's failure probability."""
        firmware = self.ctx.spec.firmware
        probability = {Stage.DOWNLOAD: firmware.download_failure,
                       Stage.INSTALL: firmware.install_failure,
                       Stage.UPLOAD: firmware.upload_failure}.get(job.stage)
        if job.kind == _SIGNED and job.stage == Stage.DOWNLOADED and job.signed is not None:
            data = job.data if job.data is not None else simulated_firmware(job.location or "")
            return verify_firmware_signature(job.signed.certificate, job.signed.signature, data)
        if probability is None:
            return True
        if job.fail_at is not None:  # a fault's job: only its stage fails, whatever the odds
            return job.stage != job.fail_at
        return self._rng.random() >= probability

    def _end(self, job: Job, status: enum.StrEnum | None, now: float, outcome: str) -> None:
        if status is not None:
            self._report(job, status, now)
        if self._jobs.get(_slot(job.kind)) is job:
            del self._jobs[_slot(job.kind)]
        self._set_activity(job, None)
        self._note(now, "job_ended", job, outcome=outcome,
                   status=None if status is None else status.value)
        if job.injection is not None:
            self.ctx.note(now, "fault_ended", fault="firmware_failure", injection=job.injection)

    # --- reporting ----------------------------------------------------------------------------

    def _report(self, job: Job, status: enum.StrEnum, now: float) -> None:
        """Report ``status`` (now, or once connected and Accepted) and keep it as the job's
        activity."""
        self._set_activity(job, status)
        request = _notification(job.kind, status, job.request_id)
        replaced = self._unsent.pop(job.kind, None)
        if self._can_send():
            self.ctx.session.call(request, now)
            return
        if replaced is not None:
            self.ctx.note(now, "job_status_deferred", kind=job.kind.value,
                          replaced=msgspec.to_builtins(replaced))
        self._unsent[job.kind] = request

    def _can_send(self) -> bool:
        """Connected and Accepted, and not going down (a reboot begun in this very step)."""
        return self.ctx.powered and self.ctx.accepted_online()

    def _flush(self, now: float) -> None:
        if self._unsent and self._can_send():
            for request in self._unsent.values():
                self.ctx.session.call(request, now)
            self._unsent.clear()

    def _set_activity(self, job: Job, status: enum.StrEnum | None) -> None:
        activities, rid = self.ctx.activities, job.request_id or 0
        match job.kind:
            case JobKind.FIRMWARE:
                activities.firmware = None if status is None else FirmwareStatus(status)
            case JobKind.SIGNED_FIRMWARE:
                activities.signed_firmware = None if status is None \
                    else (FirmwareStatus(status), rid)
            case JobKind.DIAGNOSTICS:
                activities.diagnostics = None if status is None else DiagnosticsStatus(status)
            case JobKind.LOG:
                activities.log = None if status is None else (UploadLogStatus(status), rid)

    def _note(self, now: float, what: str, job: Job, **data: object) -> None:
        self.ctx.note(now, what, None, job=job.id, kind=job.kind.value, stage=job.stage.value,
                      **data)


def _notification(kind: JobKind, status: enum.StrEnum, request_id: int | None) -> msgspec.Struct:
    match kind:
        case JobKind.FIRMWARE:
            return FirmwareStatusNotificationRequest(status=FirmwareStatus(status))
        case JobKind.SIGNED_FIRMWARE:
            return SignedFirmwareStatusNotificationRequest(status=FirmwareStatus(status),
                                                           request_id=request_id)
        case JobKind.DIAGNOSTICS:
            return DiagnosticsStatusNotificationRequest(status=DiagnosticsStatus(status))
        case JobKind.LOG:
            return LogStatusNotificationRequest(status=UploadLogStatus(status),
                                                request_id=request_id)
