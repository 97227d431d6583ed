"""A user's check, registered by entry point: a test distribution (a ``.dist-info`` folder and a
module on ``sys.path``) registers it; ``sim check`` knows its parameters from its signature, and
the run's verdicts include it."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.config import Expect
from simulator.events import FrameOut
from simulator.verdicts import ENTRY_POINT_GROUP, ExpectationError, check_expectations, judge
from tests.report.helpers import T0, write_run

MODULE = '''
from simulator.events import FrameOut
from simulator.verdicts import Duration, Outcome, RunLedger


def few_heartbeats(run: RunLedger, *, most: int = 1, after: Duration = 0.0) -> Outcome:
    sent = sum(1 for f in run.events(FrameOut) if f.action == "Heartbeat" and f.t >= after)
    return Outcome(passed=sent <= most, measured=f"{sent} heartbeat(s), at most {most}")


def always(run: RunLedger) -> bool:
    return True


def broken(run: RunLedger) -> Outcome:
    raise RuntimeError("the check itself is wrong")


def positional(run: RunLedger, most: int) -> bool:
    return True
'''


def install(folder: Path, module: str, checks: dict[str, str]) -> None:
    """A distribution in ``folder`` that ships ``module`` and registers ``checks``."""
    (folder / f"{module}.py").write_text(MODULE)
    info = folder / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {module}:{target}" for name, target in checks.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


@pytest.fixture
def registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    install(folder, "lab_checks", {"few_heartbeats": "few_heartbeats", "always": "always",
                                   "broken": "broken", "positional": "positional",
                                   "missing": "not_there"})
    monkeypatch.syspath_prepend(str(folder))
    return folder


async def test_a_registered_check_is_judged_with_its_parameters(
    registered: Path, tmp_path: Path
) -> None:
    path = tmp_path / "lab.db"
    await write_run(path, [
        FrameOut(t=T0 + n, charger="A", raw="[2]", message_type=2, unique_id=f"h{n}",
                 action="Heartbeat") for n in range(3)])
    expectations = [Expect(check="few_heartbeats", params={"most": 2}),
                    Expect(check="few_heartbeats", params={"most": 2, "after": "1s"}),
                    Expect(check="always", params={}),
                    Expect(check="broken", params={})]
    verdicts = judge(path, expectations=expectations)
    assert [(v.number, v.passed, v.measured) for v in verdicts[:3]] == [
        (1, False, "3 heartbeat(s), at most 2"),
        (2, True, "2 heartbeat(s), at most 2"),
        (3, True, "passed"),
    ]
    assert not verdicts[3].passed
    assert "RuntimeError: the check itself is wrong" in verdicts[3].measured


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ({"check": "few_heartbeats", "most": "two"}, "most", ["an integer", "'two'"]),
        ({"check": "few_heartbeats", "least": 1}, "least", ["does not take 'least'",
                                                           "takes: most, after"]),
        ({"check": "positional"}, "check", ["keyword-only", "'most'"]),
        ({"check": "missing"}, "check", ["lab_checks:not_there", "cannot be loaded"]),
        ({"check": "few_heartbeat"}, "check", ["did you mean 'few_heartbeats'?"]),
    ],
)
def test_a_registered_check_is_checked_like_a_built_in_one(
    table: dict[str, str | int], key: str, words: list[str]
) -> None:
    with pytest.raises(ExpectationError) as caught:
        check_expectations([Expect(check=str(table["check"]),
                                   params={k: v for k, v in table.items() if k != "check"})])
    assert caught.value.error.key == key
    for word in words:
        assert word in caught.value.error.message


def test_without_the_distribution_the_check_is_unknown() -> None:
    with pytest.raises(ExpectationError) as caught:
        check_expectations([Expect(check="few_heartbeats", params={})])
    assert "unknown check 'few_heartbeats'" in caught.value.error.message
