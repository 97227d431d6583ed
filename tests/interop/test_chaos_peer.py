"""The chaos scenarios against a central system nobody here wrote: the peer (``peer_csms.py``, on
the PyPI ``ocpp`` package, in another process, schema validation on, with its script of
CS-initiated calls). Four of the shipped scenarios run at once through the CLI, each against the
same peer: the simulator must survive whatever the peer does (no charger crash, no traceback,
exit code 0 or 1, never 2), inject every fault its file schedules, and judge every expectation,
which ``--junit`` writes as one test case each. Whether the peer passes is not this test's
business: it is the scenarios' verdict on the peer (``protocol-fuzz`` finds that the ``ocpp``
package answers some broken frames with other codes than the 1.6 spec names)."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

import pytest
import trio

from simulator.config import load_fleet
from simulator.config.library import scenario_path

from .conftest import PeerFactory
from .fleet_runs import CLI_GRACE_S, run_cli

SCENARIOS: Final = ("blackout", "flapping", "protocol-fuzz", "slow-network")
"""Real-time scenarios covering the three families: power loss and a reconnect storm, drops and
resets, every protocol fault, shaped links."""
BOUND_S: Final = 45.0 + CLI_GRACE_S + 30.0
"""The longest scenario (45 s), its grace period and start-up, and the four sharing two cores."""


def _toml(name: str) -> Path:
    path = scenario_path(name)
    assert path is not None
    return path


@pytest.mark.slow
def test_chaos_scenarios_run_against_the_ocpp_package_and_are_judged(
    tmp_path: Path, peer_csms_factory: PeerFactory,
) -> None:
    peer = peer_csms_factory("--commands")
    done: dict[str, tuple[int, str, str]] = {}

    async def run(name: str) -> None:
        done[name] = await run_cli(_toml(name), peer.url, tmp_path / f"{name}.db", BOUND_S,
                                   extra=("--junit", str(tmp_path / f"{name}.xml")))

    async def all_of_them() -> None:
        async with trio.open_nursery() as nursery:
            for name in SCENARIOS:
                nursery.start_soon(run, name)

    trio.run(all_of_them)
    for name in SCENARIOS:
        code, _stdout, stderr = done[name]
        assert code in (0, 1), (name, code, stderr)
        assert "Traceback" not in stderr, (name, stderr)
        fleet = load_fleet(_toml(name), env={})
        cases = ET.parse(tmp_path / f"{name}.xml").getroot().iter("testcase")
        assert len(list(cases)) == len(fleet.expect), name
        with sqlite3.connect(tmp_path / f"{name}.db") as db:
            assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'crash'"
                              ).fetchone() == (0,), name
            injected = {int(index) for (index,) in db.execute(
                "SELECT DISTINCT json_extract(data, '$.seed_path[1]') FROM events"
                " WHERE kind = 'fault' AND json_extract(data, '$.seed_path[0]') = 'chaos'")}
            assert injected == set(range(len(fleet.chaos))), name
            answered = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'frame_in'"
                                  ).fetchone()[0]
            assert answered > 0, name
