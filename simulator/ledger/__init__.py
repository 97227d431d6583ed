"""The ledger: a SQLite file in WAL mode that keeps a lab's runs, every bus event of each, and
the chargers' undelivered transaction messages (so that a resumed run sends them).

Layout, bottom up (each module imports only those above it):

- :mod:`~simulator.ledger.schema`: tables, views, indexes, ``RunStatus``, connection settings;
- :mod:`~simulator.ledger.reads`: read-only connections, ``runs`` rows and what a run left
  queued (the report, the CLI);
- :mod:`~simulator.ledger.statements`: multi-row statements, the way every batch is written;
- :mod:`~simulator.ledger.outbox`: the ``SaveOutbox`` control and the outbox rows;
- :mod:`~simulator.ledger.store`: the synchronous :class:`Ledger` and :func:`finish_run`;
- :mod:`~simulator.ledger.writer`: the Trio actor ``run_ledger_writer`` and its writer thread.

This package re-exports the synchronous API, which needs no trio: a reader or a sync tool can
``import simulator.ledger`` without loading it. The Trio actor is imported from
``simulator.ledger.writer``, the only module here that imports trio.
"""

from simulator.ledger.outbox import SaveOutbox
from simulator.ledger.reads import (
    LOOP_PROBE_SUMMARY_KEY,
    QUEUED_CHARGERS_SUMMARY_KEY,
    QUEUED_SUMMARY_KEY,
    RunRecord,
    get_run,
    integrity_check_conn,
    latest_run,
    open_readonly,
    queued_at_end,
    queued_chargers_at_end,
)
from simulator.ledger.schema import CHARGER_INDEX, KIND_INDEX, RunStatus
from simulator.ledger.statements import MAX_ROWS_PER_STATEMENT
from simulator.ledger.store import Ledger, finish_run

__all__ = [
    "CHARGER_INDEX",
    "KIND_INDEX",
    "LOOP_PROBE_SUMMARY_KEY",
    "MAX_ROWS_PER_STATEMENT",
    "QUEUED_CHARGERS_SUMMARY_KEY",
    "QUEUED_SUMMARY_KEY",
    "Ledger",
    "RunRecord",
    "RunStatus",
    "SaveOutbox",
    "finish_run",
    "get_run",
    "integrity_check_conn",
    "latest_run",
    "open_readonly",
    "queued_at_end",
    "queued_chargers_at_end",
]
