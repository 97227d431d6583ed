"""The FirmwareManagement profile: UpdateFirmware and GetDiagnostics.

Rules (OCPP 1.6 core spec §5.16 Update Firmware, §5.9 Get Diagnostics; the jobs themselves are
:mod:`simulator.machines.jobs`):

- UpdateFirmware is answered (an empty confirmation), then the update waits for
  ``retrieveDate`` and goes Downloading, Downloaded, Installing, Installed (or DownloadFailed,
  InstallationFailed) in FirmwareStatusNotifications, and the charger reboots with the new
  ``firmwareVersion``. A new UpdateFirmware (or SignedUpdateFirmware) replaces the one under way.
- GetDiagnostics is answered with the ``fileName`` the charger uploads (always one: the charger
  always has a diagnostics file), then DiagnosticsStatusNotification Uploading, then Uploaded
  or UploadFailed. The file describes the charger at the request and names the
  ``startTime`` and ``stopTime`` asked for. A new GetDiagnostics replaces the upload under way.
- ``retries`` and ``retryInterval`` of both are honoured (see the jobs module).
"""

from __future__ import annotations

import msgspec

from simulator.machines.context import ChargerContext
from simulator.machines.job_details import retry_count, retry_interval, upload_file
from simulator.machines.jobs import Job, JobKind, Jobs, Stage
from simulator.machines.profiles import Answer, ProfileHandler
from simulator.ocpp.v16 import (
    GetDiagnosticsRequest,
    GetDiagnosticsResponse,
    Profile,
    UpdateFirmwareRequest,
    UpdateFirmwareResponse,
)


class FirmwareHandler(ProfileHandler):
    """UpdateFirmware and GetDiagnostics (see the module docstring); the jobs they start run
    in the charger's :class:`~simulator.machines.jobs.Jobs`."""

    profile = Profile.FIRMWARE_MANAGEMENT

    def __init__(self, ctx: ChargerContext, *, jobs: Jobs) -> None:
        super().__init__(ctx)
        self.jobs = jobs

    def answer(self, request: msgspec.Struct, now: float) -> Answer | None:
        """The response to UpdateFirmware or GetDiagnostics, and the job to start once sent."""
        match request:
            case UpdateFirmwareRequest():
                job = Job(
                    kind=JobKind.FIRMWARE, id=self.jobs.new_id(JobKind.FIRMWARE),
                    location=request.location, stage=Stage.SCHEDULED,
                    retrieve_at=request.retrieve_date.timestamp(),
                    retries=retry_count(request.retries),
                    retry_interval=retry_interval(request.retry_interval),
                    timings=self.jobs.timings(),
                )
                return UpdateFirmwareResponse(), lambda: self._start(job, now)
            case GetDiagnosticsRequest():
                window = [f"requested from {request.start_time or 'the start'} "
                          f"to {request.stop_time or 'now'}"]
                name, body = upload_file(self.ctx, "diagnostics", now, tuple(window))
                job = Job(
                    kind=JobKind.DIAGNOSTICS, id=self.jobs.new_id(JobKind.DIAGNOSTICS),
                    location=request.location, stage=Stage.UPLOAD,
                    retries=retry_count(request.retries),
                    retry_interval=retry_interval(request.retry_interval),
                    timings=self.jobs.timings(), upload=(name, body),
                )
                return GetDiagnosticsResponse(file_name=name), lambda: self._start(job, now)
        return None

    def _start(self, job: Job, now: float) -> None:
        self.jobs.start(job, now)

