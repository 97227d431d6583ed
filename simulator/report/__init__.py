"""What happened in a run, read back from its ledger: counts, latency percentiles, errors,
outcomes, energy, what was left undelivered; one charger's story; CSV exports.

Layout (each module imports only those above it):

- :mod:`.model`: the frozen records (:class:`Report`, :class:`ChargerReport`, ...); field names
  carry their unit (``_ms``, ``_s``, ``_kwh``);
- :mod:`.frames`: per-action counts, CALLERROR codes and latency percentiles over the frames;
- :mod:`.faults`: each injected fault paired with what the central system did next;
- :mod:`.outcomes`: answers by status, energy per group (from the run's own fleet file), what a
  ``--resume`` run took over and delivered;
- :mod:`.profiles`: the central system's CS→CP calls by feature profile, and how the chargers
  answered them;
- :mod:`.summary`: :func:`summarize` (one run, with the verdicts it stored) and
  :class:`ReportError`;
- :mod:`.charger`: :func:`summarize_charger` (one charger of one run);
- :mod:`.export`: :func:`write_csv` (frames, transactions and events as CSV);
- :mod:`.text`: :func:`render_text` and :func:`render_charger_text`; :func:`render_json` here;
- :mod:`.diff`: :func:`render_diff`, two runs side by side (``sim diff``);
- :mod:`.timeline`: the series over time (connected chargers, exchanges per second, transactions
  running, faults) and the latency histograms, aggregated in SQL;
- :mod:`.html`: ``sim report --html``, one self-contained page drawn with the dashboard's chart
  code (``simulator/web/charts.js``).

Bad input (no such file, not SQLite, not a ledger, no such run or charger, an unwritable export
directory) raises :class:`ReportError`, whose message is one line naming the file.
"""

from typing import Final

import msgspec

from simulator.report.charger import summarize_charger
from simulator.report.diff import render_diff
from simulator.report.export import write_csv
from simulator.report.faults import CLOCK_ORIGIN_SUMMARY_KEY
from simulator.report.frames import PERCENTILES, UNKNOWN_ACTION, UNKNOWN_ERROR_CODE, percentile
from simulator.report.model import (
    ActionStats,
    ChargerReport,
    ChargerTransaction,
    ConnectionStats,
    ConnectorStatus,
    Energy,
    FaultEffect,
    Outcomes,
    ProfileAction,
    ProfileUsage,
    Report,
    ResumeStats,
    TransactionStats,
    Verdict,
)
from simulator.report.profiles import NO_STATUS, UNKNOWN_PROFILE
from simulator.report.summary import VERDICTS_SUMMARY_KEY, ReportError, summarize
from simulator.report.text import (
    MAX_SHOWN,
    profile_lines,
    render_charger_text,
    render_text,
    verdict_lines,
    verdict_title,
)

_encoder: Final = msgspec.json.Encoder()


def render_json(report: Report | ChargerReport) -> str:
    """``report`` as one JSON object: the fields of its record, units in the key names; the
    same numbers as :func:`render_text` shows (unrounded)."""
    return _encoder.encode(report).decode()


__all__ = [
    "CLOCK_ORIGIN_SUMMARY_KEY",
    "MAX_SHOWN",
    "NO_STATUS",
    "PERCENTILES",
    "UNKNOWN_ACTION",
    "UNKNOWN_ERROR_CODE",
    "UNKNOWN_PROFILE",
    "VERDICTS_SUMMARY_KEY",
    "ActionStats",
    "ChargerReport",
    "ChargerTransaction",
    "ConnectionStats",
    "ConnectorStatus",
    "Energy",
    "FaultEffect",
    "Outcomes",
    "ProfileAction",
    "ProfileUsage",
    "Report",
    "ReportError",
    "ResumeStats",
    "TransactionStats",
    "Verdict",
    "percentile",
    "profile_lines",
    "render_charger_text",
    "render_diff",
    "render_json",
    "render_text",
    "summarize",
    "summarize_charger",
    "verdict_lines",
    "verdict_title",
    "write_csv",
]
