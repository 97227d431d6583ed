"""FirmwareManagement on the charger machine, with no event loop: UpdateFirmware and
GetDiagnostics as timed jobs (simulated transfers, and real ones through the ``Transfer`` effect
and ``transfer_done``), their notifications, retries, the reboot into the new firmware, and the
triggers that report a job's status. Every frame goes through the schema oracle (the pair)."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.events import Note
from simulator.machines.effects import Effect, Transfer, TransferKind, redacted_url
from simulator.machines.job_details import (
    MAX_RETRIES,
    MAX_RETRY_INTERVAL,
    firmware_version_of,
    upload_url,
)
from simulator.machines.parts import FirmwareSpec
from tests.machines.pair import EPOCH, MachinePair, iso
from tests.machines.test_charger import start_charging

FAST = FirmwareSpec(download=10.0, install=10.0, upload=5.0)
URL = "https://updates.example.com/fw/acme-2.1.0.bin"


class TransferPair(MachinePair):
    """A pair that keeps the ``Transfer`` effects, for the test to complete them."""

    def __init__(self, **kwargs: Any) -> None:
        self.transfers: list[Transfer] = []
        super().__init__(**kwargs)

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, Transfer):
            self.transfers.append(effect)
        super()._apply(effect)

    def done(self, ok: bool, data: bytes | None = None, index: int = -1) -> None:
        self.machine.transfer_done(self.transfers[index].job, ok, data, self.now,
                                   detail="" if ok else "HTTP 404")
        self.drain()


def statuses(pair: MachinePair, action: str = "FirmwareStatusNotification"
             ) -> list[tuple[float, str]]:
    return [(r.t, r.payload["status"]) for r in pair.cs.of(action)]


def notes(pair: MachinePair, what: str) -> list[Note]:
    return [e for e in pair.events if isinstance(e, Note) and e.what == what]


def update(pair: MachinePair, location: str = URL, at: float = 0.0, **extra: Any) -> None:
    call = pair.cs_call("UpdateFirmware", {"location": location,
                                           "retrieveDate": iso(EPOCH + at), **extra})
    assert call.result == {}


# --- UpdateFirmware -----------------------------------------------------------------------------


def test_update_firmware_downloads_installs_and_reboots_into_the_new_version() -> None:
    pair = MachinePair(firmware=FAST, firmware_version="1.0.0")
    update(pair, at=60)  # retrieveDate one minute ahead on the charger's clock
    pair.advance(100)
    assert statuses(pair) == [(60, "Downloading"), (70, "Downloaded"), (70, "Installing"),
                              (80, "Installed")]
    assert pair.reboots == [80]
    boots = pair.cs.of("BootNotification")
    assert [(b.t, b.payload["firmwareVersion"]) for b in boots] == [(0, "1.0.0"),
                                                                   (85, "acme-2.1.0")]
    [event] = [e for e in pair.cs.of("SecurityEventNotification")
               if e.payload["type"] == "FirmwareUpdated"]
    assert event.t == 85
    assert [n.data["outcome"] for n in notes(pair, "job_ended")] == ["done"]


def test_the_new_version_survives_a_power_loss() -> None:
    pair = MachinePair(firmware=FAST, firmware_version="1.0.0")
    update(pair)
    pair.advance(30)
    assert pair.memory is not None and pair.memory.firmware_version == "acme-2.1.0"
    restarted = MachinePair(memory=pair.memory, firmware_version="1.0.0")
    assert restarted.cs.of("BootNotification")[0].payload["firmwareVersion"] == "acme-2.1.0"


def test_the_reboot_stops_a_running_transaction_first() -> None:
    pair = MachinePair(firmware=FAST)
    start_charging(pair)
    update(pair)
    pair.advance(30)
    [stop] = pair.cs.of("StopTransaction")
    assert stop.payload["reason"] == "Reboot" and stop.t == 20
    assert pair.reboots == [20]
    assert pair.cs.actions().index("StopTransaction") < \
        pair.cs.actions().index("BootNotification", 1)


@pytest.mark.parametrize(("firmware", "extra", "expected"), [
    (FirmwareSpec(download=10, download_failure=1.0), {},
     [(0, "Downloading"), (10, "DownloadFailed")]),
    # two retries 20 s apart: three tries of 10 s, the failure reported after the last
    (FirmwareSpec(download=10, download_failure=1.0), {"retries": 2, "retryInterval": 20},
     [(0, "Downloading"), (70, "DownloadFailed")]),
    (FirmwareSpec(download=10, install=10, install_failure=1.0), {"retries": 3},
     [(0, "Downloading"), (10, "Downloaded"), (10, "Installing"), (20, "InstallationFailed")]),
])
def test_failures_end_the_update_without_a_reboot(
    firmware: FirmwareSpec, extra: dict[str, Any], expected: list[tuple[float, str]]
) -> None:
    pair = MachinePair(firmware=firmware, firmware_version="1.0.0")
    update(pair, **extra)
    pair.advance(200)
    assert statuses(pair) == expected
    assert pair.reboots == []
    assert [b.payload["firmwareVersion"] for b in pair.cs.of("BootNotification")] == ["1.0.0"]


def test_zero_length_tries_settle_within_one_step() -> None:
    pair = MachinePair(firmware=FirmwareSpec(download=0, install=0, download_failure=1.0))
    update(pair, retries=10**6, retryInterval=0)  # taken as MAX_RETRIES
    assert statuses(pair) == [(0, "Downloading"), (0, "DownloadFailed")]
    assert len(notes(pair, "job_retry")) == MAX_RETRIES


def test_a_huge_retry_interval_is_bounded() -> None:
    pair = MachinePair(firmware=FirmwareSpec(download=1, download_failure=1.0))
    update(pair, retries=1, retryInterval=10**30)
    pair.advance(MAX_RETRY_INTERVAL + 10)
    assert statuses(pair)[-1] == (MAX_RETRY_INTERVAL + 2, "DownloadFailed")


def test_failure_draws_come_from_the_seed() -> None:
    def outcome(seed: int) -> list[str]:
        pair = MachinePair(seed=seed, firmware=FirmwareSpec(download=1, install=1,
                                                            download_failure=0.5))
        for _ in range(6):
            update(pair, location="ftp://example.com/fw.bin")
            pair.advance(10)  # a reboot after an install takes 5 s
        return [s for _, s in statuses(pair) if s in ("DownloadFailed", "Installed")]

    assert outcome(3) == outcome(3)
    assert set(outcome(3)) | set(outcome(4)) == {"DownloadFailed", "Installed"}


def test_a_reboot_interrupts_a_download_which_reports_its_failure_after_the_boot() -> None:
    pair = MachinePair(firmware=FAST)
    update(pair)
    pair.advance(3)
    assert pair.cs_call("Reset", {"type": "Hard"}).status == "Accepted"
    pair.advance(20)
    assert statuses(pair) == [(0, "Downloading"), (8, "DownloadFailed")]
    actions = pair.cs.actions()
    assert actions.index("BootNotification", 1) < len(actions) - 1 - \
        actions[::-1].index("FirmwareStatusNotification")


def test_a_new_update_replaces_the_one_under_way() -> None:
    pair = MachinePair(firmware=FAST)
    update(pair, location="https://x.example/old.bin")
    pair.advance(5)
    update(pair)
    pair.advance(40)
    assert statuses(pair) == [(0, "Downloading"), (5, "Downloading"), (15, "Downloaded"),
                              (15, "Installing"), (25, "Installed")]
    [cancelled] = notes(pair, "job_cancelled")
    assert cancelled.data["kind"] == "firmware"


def test_statuses_that_fall_offline_wait_for_the_link_latest_first() -> None:
    pair = MachinePair(firmware=FAST)
    update(pair, location="ftp://x.example/fw.bin")
    pair.auto_reconnect = False
    pair.disconnect()
    pair.advance(15)
    pair.connect()
    pair.advance(1)
    assert statuses(pair)[-1] == (15, "Installing")
    assert [s for _, s in statuses(pair)] == ["Downloading", "Installing"]


# --- GetDiagnostics -----------------------------------------------------------------------------


@pytest.mark.parametrize(("firmware", "expected"), [
    (FAST, [(0, "Uploading"), (5, "Uploaded")]),
    (FirmwareSpec(upload=5, upload_failure=1.0), [(0, "Uploading"), (5, "UploadFailed")]),
])
def test_get_diagnostics_names_its_file_then_uploads_it(
    firmware: FirmwareSpec, expected: list[tuple[float, str]]
) -> None:
    pair = MachinePair(firmware=firmware)
    call = pair.cs_call("GetDiagnostics", {"location": "ftp://logs.example.com/cp/"})
    assert call.result == {"fileName": "diagnostics-CP-1-20260101T000000Z.log"}
    pair.advance(30)
    assert statuses(pair, "DiagnosticsStatusNotification") == expected


def test_triggers_report_the_jobs_under_way_then_idle() -> None:
    pair = MachinePair(firmware=FAST)
    update(pair)
    pair.cs_call("GetDiagnostics", {"location": "ftp://logs.example.com/"})
    pair.advance(2)
    for wanted in ("FirmwareStatusNotification", "DiagnosticsStatusNotification"):
        assert pair.cs_call("TriggerMessage", {"requestedMessage": wanted}).status == "Accepted"
    assert statuses(pair)[-1] == (2, "Downloading")
    assert statuses(pair, "DiagnosticsStatusNotification")[-1] == (2, "Uploading")
    pair.advance(100)
    for wanted in ("FirmwareStatusNotification", "DiagnosticsStatusNotification"):
        pair.cs_call("TriggerMessage", {"requestedMessage": wanted})
    assert statuses(pair)[-1][1] == "Idle"
    assert statuses(pair, "DiagnosticsStatusNotification")[-1][1] == "Idle"


def test_an_extended_trigger_reports_an_unsigned_update_under_way_too() -> None:
    pair = MachinePair(firmware=FAST)
    update(pair)
    pair.advance(2)
    assert pair.cs_call("ExtendedTriggerMessage", {
        "requestedMessage": "FirmwareStatusNotification"}).status == "Accepted"
    [signed] = pair.cs.of("SignedFirmwareStatusNotification")
    assert signed.payload == {"status": "Downloading"}


def test_without_the_profile_its_calls_are_not_supported() -> None:
    pair = MachinePair(profiles=("Core", "RemoteTrigger"))
    assert pair.cs_call("UpdateFirmware", {"location": URL,
                                           "retrieveDate": iso(EPOCH)}).error == "NotSupported"
    assert pair.cs_call("GetDiagnostics", {"location": URL}).error == "NotSupported"


# --- real transfers -----------------------------------------------------------------------------


def test_a_real_download_ends_its_step_when_the_transfer_does() -> None:
    pair = TransferPair(firmware=FAST, real_transfers=True)
    update(pair)
    [transfer] = pair.transfers
    assert (transfer.kind, transfer.url, transfer.body) == (TransferKind.DOWNLOAD, URL, None)
    pair.advance(100)  # no timer ends a real transfer
    assert statuses(pair) == [(0, "Downloading")]
    pair.done(True, b"firmware image")
    pair.advance(30)
    assert statuses(pair) == [(0, "Downloading"), (100, "Downloaded"), (100, "Installing"),
                              (110, "Installed")]


def test_a_failed_real_download_is_retried_then_reported() -> None:
    pair = TransferPair(firmware=FAST, real_transfers=True)
    update(pair, retries=1, retryInterval=10)
    pair.done(False)
    pair.advance(10)
    assert len(pair.transfers) == 2 and pair.transfers[0].job != pair.transfers[1].job
    pair.done(False, index=0)  # the first try's result, late: ignored
    assert notes(pair, "transfer_ignored")
    pair.advance(1)
    pair.done(False)
    assert statuses(pair) == [(0, "Downloading"), (11, "DownloadFailed")]


def test_a_real_upload_puts_the_file_in_the_location() -> None:
    pair = TransferPair(firmware=FAST, real_transfers=True)
    name = pair.cs_call("GetDiagnostics", {"location": "http://logs.example.com/cp"}
                        ).result["fileName"]  # type: ignore[index]
    [transfer] = pair.transfers
    assert transfer.kind == TransferKind.UPLOAD
    assert transfer.url == f"http://logs.example.com/cp/{name}"
    assert transfer.body is not None and b"CP-1" in transfer.body
    pair.advance(2)
    pair.done(True)
    assert statuses(pair, "DiagnosticsStatusNotification") == [(0, "Uploading"), (2, "Uploaded")]


def test_other_schemes_are_simulated_even_with_real_transfers() -> None:
    pair = TransferPair(firmware=FAST, real_transfers=True)
    update(pair, location="ftp://x.example/fw.bin")
    pair.advance(30)
    assert pair.transfers == [] and statuses(pair)[-1] == (20, "Installed")


@pytest.mark.parametrize("real", [False, True])
def test_a_location_that_does_not_parse_is_simulated_never_a_crash(real: bool) -> None:
    pair = TransferPair(firmware=FAST, real_transfers=real)
    update(pair, location="http://[::1/fw.bin")
    pair.advance(30)
    assert pair.transfers == [] and statuses(pair)[-1] == (20, "Installed")


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(("location", "version"), [
    (URL, "acme-2.1.0"),
    ("ftp://x/firmware/v3.tar.gz", "v3"),
    ("http://x/a/build-42/", "build-42"),
    ("http://x/" + "y" * 80, "y" * 50),
    ("http://x/", "fw-" + "7d3b67b3f5d3"),
])
def test_firmware_version_of_a_location(location: str, version: str) -> None:
    if version.startswith("fw-"):
        assert firmware_version_of(location).startswith("fw-")
        assert len(firmware_version_of(location)) == 15
    else:
        assert firmware_version_of(location) == version


def test_urls_are_recorded_without_their_password() -> None:
    assert redacted_url("ftp://user:secret@host:21/dir/") == "ftp://host:21/dir/"
    assert redacted_url(URL) == URL
    assert upload_url("http://h/dir/", "a b.log") == "http://h/dir/a%20b.log"
    pair = MachinePair(firmware=FAST)
    update(pair, location="ftp://user:secret@host/fw.bin")
    assert not [e for e in pair.events if "secret" in repr(e) and not hasattr(e, "raw")]
