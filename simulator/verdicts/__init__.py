"""Verdicts: the ``[[expect]]`` tables of a fleet file, judged over a run's ledger.

Layout (each module imports only those above it):

- :mod:`.params`: a check's parameters, from its function's signature (:data:`Duration`,
  :data:`Share`), and the binding of an ``[[expect]]`` table to them (:class:`ExpectError`);
- :mod:`.ledger`: :class:`RunLedger`, what a check reads, and :class:`Outcome`, what it returns;
- :mod:`.schemas`: the official 1.6 JSON schemas (``[run] validate_csms = true``);
- :mod:`.wire`: ``latency``, ``schema_clean``, ``error_codes``, ``max_errors``;
- :mod:`.fleet`: ``no_lost_transactions``, ``reconnect``, ``boot_accepted``;
- :mod:`.registry`: the built-in checks and users' checks registered by entry point
  (:data:`ENTRY_POINT_GROUP`); :func:`check_expectations`, which ``sim check`` runs;
- :mod:`.judge`: :func:`judge`, the verdicts of a run (:func:`judge_unjudged` for one that
  ended without them);
- :mod:`.junit`: :func:`write_junit`, verdicts as JUnit XML.

A user's check, in a package that registers it under :data:`ENTRY_POINT_GROUP`::

    from simulator.events import FrameOut
    from simulator.verdicts import Outcome, RunLedger

    def few_heartbeats(run: RunLedger, *, most: int = 100) -> Outcome:
        sent = sum(1 for f in run.events(FrameOut) if f.action == "Heartbeat")
        return Outcome(passed=sent <= most, measured=f"{sent} heartbeats, at most {most}")
"""

from simulator.verdicts.judge import judge, judge_run, judge_unjudged
from simulator.verdicts.junit import junit_xml, write_junit
from simulator.verdicts.ledger import Outcome, RunLedger
from simulator.verdicts.params import Duration, ExpectError, Share
from simulator.verdicts.registry import (
    BUILT_INS,
    ENTRY_POINT_GROUP,
    Check,
    ExpectationError,
    check_expectations,
    check_names,
    find_check,
)
from simulator.verdicts.schemas import INSTALL_HINT, missing_packages
from simulator.verdicts.wire import expected_error

__all__ = [
    "BUILT_INS",
    "ENTRY_POINT_GROUP",
    "INSTALL_HINT",
    "Check",
    "Duration",
    "ExpectError",
    "ExpectationError",
    "Outcome",
    "RunLedger",
    "Share",
    "check_expectations",
    "check_names",
    "expected_error",
    "find_check",
    "judge",
    "judge_run",
    "judge_unjudged",
    "junit_xml",
    "missing_packages",
    "write_junit",
]
