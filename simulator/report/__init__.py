"""What happened in a run, read back from its ledger: counts, latency percentiles, errors,
outcomes, energy, what was left undelivered; one charger's story; CSV exports.

Layout (each module imports only those above it):

- :mod:`.model`: the frozen records (:class:`Report`, :class:`ChargerReport`, ...); field names
  carry their unit (``_ms``, ``_s``, ``_kwh``);
- :mod:`.frames`: per-action counts, CALLERROR codes and latency percentiles over the frames;
- :mod:`.outcomes`: answers by status, energy per group (from the run's own fleet file), what a
  ``--resume`` run took over and delivered;
- :mod:`.summary`: :func:`summarize` (one run) and :class:`ReportError`;
- :mod:`.charger`: :func:`summarize_charger` (one charger of one run);
- :mod:`.export`: :func:`write_csv` (frames, transactions and events as CSV);
- :mod:`.text`: :func:`render_text` and :func:`render_charger_text`; :func:`render_json` here.

Bad input (no such file, not SQLite, not a ledger, no such run or charger, an unwritable export
directory) raises :class:`ReportError`, whose message is one line naming the file.
"""

from typing import Final

import msgspec

from simulator.report.charger import summarize_charger
from simulator.report.export import write_csv
from simulator.report.frames import PERCENTILES, UNKNOWN_ACTION, UNKNOWN_ERROR_CODE, percentile
from simulator.report.model import (
    ActionStats,
    ChargerReport,
    ChargerTransaction,
    ConnectionStats,
    ConnectorStatus,
    Energy,
    Outcomes,
    Report,
    ResumeStats,
    TransactionStats,
)
from simulator.report.summary import ReportError, summarize
from simulator.report.text import MAX_SHOWN, render_charger_text, render_text

_encoder: Final = msgspec.json.Encoder()


def render_json(report: Report | ChargerReport) -> str:
    """``report`` as one JSON object: the fields of its record, units in the key names; the
    same numbers as :func:`render_text` shows (unrounded)."""
    return _encoder.encode(report).decode()


__all__ = [
    "MAX_SHOWN",
    "PERCENTILES",
    "UNKNOWN_ACTION",
    "UNKNOWN_ERROR_CODE",
    "ActionStats",
    "ChargerReport",
    "ChargerTransaction",
    "ConnectionStats",
    "ConnectorStatus",
    "Energy",
    "Outcomes",
    "Report",
    "ReportError",
    "ResumeStats",
    "TransactionStats",
    "percentile",
    "render_charger_text",
    "render_json",
    "render_text",
    "summarize",
    "summarize_charger",
    "write_csv",
]
