"""Judging a run: each ``[[expect]]`` table's check run over the run's ledger, in order, into
:class:`~simulator.report.Verdict` records (stored in the run's summary by the runtime, shown
by ``sim start`` and ``sim report``, written as JUnit XML by ``--junit``).

An expectation that cannot be checked (possible only through the Python API: ``sim check`` and
``sim start`` refuse such a file first) and a user's check that raises are failed verdicts that
say why; a built-in check that raises is a bug and is not hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulator.config import Expect, Fleet
from simulator.report import Verdict
from simulator.report.outcomes import run_fleet
from simulator.report.summary import open_run
from simulator.verdicts.ledger import Outcome, RunLedger
from simulator.verdicts.params import ExpectError
from simulator.verdicts.registry import ExpectationError, check_expectations, find_check


def judge(path: str | Path, run_id: int | None = None, *,
          expectations: Sequence[Expect] | None = None,
          fleet: Fleet | None = None) -> tuple[Verdict, ...]:
    """The verdicts of run ``run_id`` (default: the latest) of the ledger at ``path`` on
    ``expectations`` (default: the ``[[expect]]`` tables of ``fleet``, itself by default the
    fleet file the run stored). Reads the ledger only. Raises
    :class:`~simulator.report.ReportError` for a ledger that cannot be read."""
    with open_run(path, run_id) as (conn, run):
        used = fleet if fleet is not None else run_fleet(run)
        wanted = expectations if expectations is not None else (
            () if used is None else used.expect)
        return judge_run(RunLedger(conn, run, used, Path(path)), wanted)


def judge_unjudged(path: str | Path, run_id: int | None = None) -> tuple[Verdict, ...] | None:
    """The verdicts of a run that ended without storing its own (a killed run), on the
    expectations of the fleet file it stored; ``None`` when it stored none, or some that cannot
    be checked here (a user's check that is not installed). Raises
    :class:`~simulator.report.ReportError` for a ledger that cannot be read."""
    with open_run(path, run_id) as (conn, run):
        fleet = run_fleet(run)
        if fleet is None or not fleet.expect:
            return None
        try:
            check_expectations(fleet.expect)
        except ExpectationError:
            return None
        return judge_run(RunLedger(conn, run, fleet, Path(path)), fleet.expect)


def judge_run(run: RunLedger, expectations: Sequence[Expect]) -> tuple[Verdict, ...]:
    """The verdicts of ``run`` on ``expectations``, numbered from 1 in order."""
    return tuple(_verdict(run, number, expect)
                 for number, expect in enumerate(expectations, start=1))


def _verdict(run: RunLedger, number: int, expect: Expect) -> Verdict:
    try:
        check = find_check(expect.check)
        params = check.bind(expect.params)
    except ExpectError as error:
        outcome = Outcome(passed=False, measured=f"cannot be checked: {error.message}")
    else:
        if check.built_in:
            outcome = check(run, params)
        else:
            try:
                outcome = check(run, params)
            except Exception as error:  # a user's check: its failure is a verdict, not a crash
                outcome = Outcome(passed=False, measured=f"the check failed ({check.origin}):"
                                                         f" {type(error).__name__}: {error}")
    return Verdict(number=number, check=expect.check, params=dict(expect.params),
                   passed=outcome.passed, measured=" ".join(outcome.measured.split()))
