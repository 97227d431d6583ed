"""Fixtures that run the peer central system (``peer_csms.py``, built on the PyPI ``ocpp``
package) as a separate process on 127.0.0.1 and hand tests its URL and its record.

``peer_csms`` starts one peer with the default options; ``peer_csms_factory`` starts peers with
extra command-line flags (``--commands``, ``--heartbeat 5``, ...). Every peer started through them
is killed at teardown, whatever the test did. Every test in this directory is marked ``interop``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import trio

PEER_SCRIPT: Final = Path(__file__).with_name("peer_csms.py")
READY_TIMEOUT_S: Final = 15.0
"""Longest wait for a starting peer to write its port (imports of ocpp/jsonschema take ~1 s)."""
STOP_TIMEOUT_S: Final = 5.0
RECORD_WAIT_S: Final = 10.0
DEFAULT_HEARTBEAT_S: Final = 3

Record = dict[str, Any]


class PeerStartError(RuntimeError):
    """The peer process died or did not report its port in time; the message holds its log."""


class PeerCsms:
    """One peer central system process and its record file.

    ``url`` is the endpoint without the identity (``ws://127.0.0.1:<port>/ocpp``); a charger
    connects to ``url + "/" + identity``. The port stays the same across :meth:`restart`, and the
    record file is shared by all incarnations (appended to, never truncated). ``script`` is
    the peer script to run (``peer_csms.py``, or one built on it such as ``peer_profiles.py``).
    """

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = (),
                 script: Path = PEER_SCRIPT) -> None:
        self.workdir = workdir
        self.script = script
        self.record_path = workdir / "peer-record.jsonl"
        self.ready_path = workdir / "peer-ready.txt"
        self.log_path = workdir / "peer-output.log"
        self.extra_args = extra_args
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/ocpp`` (the identity goes after a ``/``)."""
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def pid(self) -> int | None:
        """The process id of the running peer, ``None`` when stopped."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the peer (on ``self.port``; 0 the first time picks a free port) and block until
        it listens. Raises :class:`PeerStartError` (with the peer's output) on failure."""
        if self._process is not None:
            raise RuntimeError("the peer is already running")
        self.ready_path.unlink(missing_ok=True)
        command = [
            sys.executable, str(self.script), "--host", "127.0.0.1", "--port", str(self.port),
            "--record", str(self.record_path), "--ready", str(self.ready_path),
            "--heartbeat", str(DEFAULT_HEARTBEAT_S), *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise PeerStartError(
                    f"peer did not start within {READY_TIMEOUT_S}s; output:\n{self.output()}"
                )
            time.sleep(0.02)
        self.port = int(self.ready_path.read_text(encoding="utf-8"))

    def kill(self) -> None:
        """SIGKILL the peer and reap it (no-op when it is not running)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def terminate(self) -> int | None:
        """SIGTERM the peer (a clean stop: it records ``stopped``), SIGKILL it if it has not
        exited after a few seconds; returns its exit code (``None`` when it was not running)."""
        if self._process is None:
            return None
        process = self._process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None
        return process.returncode

    def restart(self) -> None:
        """Kill the peer if it runs, then start it again on the same port."""
        self.kill()
        self.start()

    def records(self) -> list[Record]:
        """Every complete JSON line of the record file so far (a torn last line is skipped)."""
        if not self.record_path.exists():
            return []
        records: list[Record] = []
        with self.record_path.open(encoding="utf-8") as file:
            for line in file:
                if line.endswith("\n"):
                    records.append(json.loads(line))
        return records

    def records_of(self, kind: str, **match: Any) -> list[Record]:
        """The records of ``kind`` whose fields equal every ``match`` item."""
        return [
            r for r in self.records()
            if r.get("kind") == kind and all(r.get(k) == v for k, v in match.items())
        ]

    async def wait_record(self, predicate: Callable[[Record], bool]) -> Record:
        """Poll the record until a line satisfies ``predicate`` and return it; raises
        ``trio.TooSlowError`` after ``RECORD_WAIT_S`` seconds of real time (the peer is another
        process); callers may bound it tighter with their own ``trio.fail_after``."""
        with trio.fail_after(RECORD_WAIT_S):
            while True:
                for record in self.records():
                    if predicate(record):
                        return record
                await trio.sleep(0.05)

    def output(self) -> str:
        """What the peer printed (stdout and stderr), for failure messages."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if (
            self.log_path.exists()
        ) else ""


PeerFactory = Callable[..., PeerCsms]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``interop``."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.interop)


@pytest.fixture
def peer_csms_factory(tmp_path: Path) -> Iterator[PeerFactory]:
    """``factory(*extra_args) -> PeerCsms``: start a listening peer with extra flags, each in its
    own directory under ``tmp_path``; all of them are stopped at teardown."""
    peers: list[PeerCsms] = []

    def factory(*extra_args: str) -> PeerCsms:
        workdir = tmp_path / f"peer{len(peers)}"
        workdir.mkdir()
        peer = PeerCsms(workdir, tuple(extra_args))
        peers.append(peer)
        peer.start()
        return peer

    try:
        yield factory
    finally:
        for peer in peers:
            peer.terminate()


@pytest.fixture
def peer_csms(peer_csms_factory: PeerFactory) -> PeerCsms:
    """A listening peer with default options (heartbeat interval 3 s, no command script)."""
    return peer_csms_factory()
