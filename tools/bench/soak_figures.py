"""The soak's figures, computed from what was sampled and recorded: no processes, no files.

``soak.py`` samples the simulator process and, once the run is over, reads the central system's
record and the simulator's ledger; this module turns those into the figures its targets are set
on, so they can be tested apart:

- **growth** (:func:`growth`): of a sampled series (RSS, open files) after the warm-up. The run
  of ``run_s`` seconds is cut into the warm-up ``[0, warmup_s)``, a *baseline* window
  ``[warmup_s, warmup_s + b)`` with ``b = min(60 s, (run_s - warmup_s) / 4)`` and an *end*
  window, the last quarter of the time after the warm-up, ``[run_s - (run_s - warmup_s) / 4,
  run_s]``. Growth is the median of the end window minus the median of the baseline window, and
  as a percentage of the baseline median. Medians, so one sample taken during a burst (a fault,
  the central system's restart) does not decide it.
- **transactions lost** (:func:`account`): the central system's record (``CsmsSide``) against
  the ledger (``LedgerSide``), in both directions; see :class:`Accounting` for each count.

Messages are matched two ways. By message id, ``(charger, unique_id)``: exact, for one attempt.
By content, :func:`message_key`: the charger, the action and the payload without its
``transactionId`` (a queued message gets it only when it is sent, and every attempt of one
message carries the same payload and timestamps while a retry gets a new message id), so the
attempts of one message share a key and two messages never do (a MeterValues carries its
sample's timestamp, a StopTransaction its stop's).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})
BASELINE_MAX_S: Final = 60.0
"""Longest baseline window after the warm-up (seconds)."""


# ---- growth --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Growth:
    """A series' growth after the warm-up (see the module docstring): medians of the baseline
    and end windows, their difference, and the difference in % of the baseline. ``None``
    everywhere when a window holds no sample."""

    baseline: float | None
    end: float | None
    delta: float | None
    percent: float | None


def growth(points: Sequence[tuple[float, float | None]], run_s: float,
           warmup_s: float) -> Growth:
    """The growth of ``points`` (``(t, value)``, ``t`` in seconds since the run began; samples
    with no value are left out) over a run of ``run_s`` seconds with ``warmup_s`` of warm-up.
    Raises ``ValueError`` when the warm-up does not leave time after it."""
    if not 0 <= warmup_s < run_s:
        raise ValueError(f"the warm-up ({warmup_s:g} s) must be shorter than the run "
                         f"({run_s:g} s)")
    after = run_s - warmup_s
    baseline_end = warmup_s + min(BASELINE_MAX_S, after / 4)
    end_start = run_s - after / 4
    baseline = _median([v for t, v in points if v is not None and warmup_s <= t < baseline_end])
    end = _median([v for t, v in points if v is not None and end_start <= t <= run_s])
    if baseline is None or end is None:
        return Growth(baseline, end, None, None)
    delta = end - baseline
    return Growth(baseline, end, delta, 100.0 * delta / baseline if baseline else None)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# ---- transactions lost ------------------------------------------------------------------------


def message_key(charger: str, action: str, payload: Any) -> int:
    """The content key of a transaction message (see the module docstring): the same for every
    attempt of one message, in the ledger and in the central system's record. A hash, so
    comparable only within one process."""
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k != "transactionId"}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hash((charger, action, text))


@dataclasses.dataclass
class CsmsSide:
    """What the central system recorded, built by :meth:`add` from its records in file order.

    Attributes:
        received_ids: ``(charger, unique_id)`` of every transaction message received.
        received_keys: their :func:`message_key`.
        starts: transaction id → ``(charger, unique_id of the StartTransaction that made it)``.
        stops: transaction id → how many StopTransactions named it.
    """

    received_ids: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    received_keys: set[int] = dataclasses.field(default_factory=set)
    starts: dict[int, tuple[str, str | None]] = dataclasses.field(default_factory=dict)
    stops: Counter[int] = dataclasses.field(default_factory=Counter)
    _last_start: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        """Take one record of ``tests/interop/peer_csms.py`` (the others are ignored): a
        ``message`` CALL of a transaction action, ``transaction_started`` (paired with the
        charger's last StartTransaction: the peer handles one connection's frames one at a
        time and records each before handling it) and ``transaction_stopped``."""
        kind, charger = record.get("kind"), record.get("charger")
        if not isinstance(charger, str):
            return
        if kind == "message" and record.get("message_type") == 2:
            action, unique_id = record.get("action"), record.get("unique_id")
            if action in TRANSACTION_ACTIONS and isinstance(unique_id, str):
                self.received_ids.add((charger, unique_id))
                self.received_keys.add(message_key(charger, action, record.get("payload")))
                if action == "StartTransaction":
                    self._last_start[charger] = unique_id
        elif kind == "transaction_started" and isinstance(record.get("transaction_id"), int):
            self.starts[record["transaction_id"]] = (charger, self._last_start.pop(charger, None))
        elif kind == "transaction_stopped" and isinstance(record.get("transaction_id"), int):
            self.stops[record["transaction_id"]] += 1


@dataclasses.dataclass(frozen=True)
class LedgerSide:
    """What the simulator's ledger says of its transaction messages.

    Attributes:
        acked: ``(charger, unique_id)`` → action, for every transaction CALL of ours answered by
            a valid CALLRESULT (a ``frame_in`` of type 3 without violations).
        acked_keys: the :func:`message_key` of those CALLs.
        sent_keys: the :func:`message_key` of every transaction CALL of ours put on the wire
            (``frame_out`` of type 2), answered or not.
        queued_keys: the :func:`message_key` of each message still in the outbox at the end.
        queued_stop_ids: the transaction ids of the StopTransactions still in the outbox.
        dropped: transaction messages given up on (``message_dropped`` events).
    """

    acked: Mapping[tuple[str, str], str]
    acked_keys: frozenset[int]
    sent_keys: frozenset[int]
    queued_keys: frozenset[int]
    queued_stop_ids: frozenset[int]
    dropped: int


@dataclasses.dataclass(frozen=True)
class Accounting:
    """The central system's record against the ledger.

    From the central system's side (every transaction id it gave out):

    - ``csms_started`` / ``csms_stopped``: transaction ids it gave out, and those of them it
      received a StopTransaction for;
    - ``phantom_starts``: ids whose StartTransaction answer never reached the charger (no valid
      CALLRESULT for that message id in the ledger): the charger sent the start again, got
      another id, and never heard of this one. OCPP 1.6 gives a central system no way to tell;
      counted, not lost;
    - ``unstopped_queued``: ids the charger knew, not stopped at the central system, whose
      StopTransaction is still in the outbox at the end (delivered on ``--resume``);
    - ``unstopped_lost``: ids the charger knew, not stopped at the central system, with no
      StopTransaction queued: **lost**;
    - ``duplicate_stops`` / ``stops_unknown``: ids stopped more than once (an answer lost on the
      wire, the stop sent again), stops naming an id it never gave out.

    From the simulator's side (every transaction message in the ledger):

    - ``acked_unrecorded``: messages answered by a valid CALLRESULT (so acknowledged, and gone
      from the outbox) whose message id the central system never recorded: **lost**;
    - ``vanished``: messages put on the wire that no attempt got acknowledged, that the central
      system never received under any message id, and that are not in the outbox at the end:
      **lost** (the loss window of a message on the wire);
    - ``dropped``: messages the charger gave up on after its retries (reported; when the central
      system never received one, it is also in ``vanished``);
    - ``queued_at_end``: messages in the outbox when the run ended (not lost: a resumed run
      sends them).
    """

    csms_started: int
    csms_stopped: int
    phantom_starts: int
    unstopped_queued: int
    unstopped_lost: int
    duplicate_stops: int
    stops_unknown: int
    acked_unrecorded: int
    vanished: int
    dropped: int
    queued_at_end: int

    @property
    def lost(self) -> int:
        """Transactions and transaction messages lost: ``unstopped_lost + acked_unrecorded +
        vanished`` (the soak's target is zero). One StopTransaction lost after its answer counts
        twice: its transaction was never stopped, and its message was never recorded."""
        return self.unstopped_lost + self.acked_unrecorded + self.vanished


def account(csms: CsmsSide, ledger: LedgerSide) -> Accounting:
    """Match the two sides (see :class:`Accounting`)."""
    phantom = queued = lost = 0
    for transaction_id, (charger, unique_id) in csms.starts.items():
        if csms.stops[transaction_id]:
            continue
        if unique_id is None or (charger, unique_id) not in ledger.acked:
            phantom += 1
        elif transaction_id in ledger.queued_stop_ids:
            queued += 1
        else:
            lost += 1
    vanished = (ledger.sent_keys - ledger.acked_keys - csms.received_keys
                - ledger.queued_keys)
    return Accounting(
        csms_started=len(csms.starts),
        csms_stopped=sum(1 for t in csms.starts if csms.stops[t]),
        phantom_starts=phantom,
        unstopped_queued=queued,
        unstopped_lost=lost,
        duplicate_stops=sum(1 for n in csms.stops.values() if n > 1),
        stops_unknown=sum(1 for t in csms.stops if t not in csms.starts),
        acked_unrecorded=sum(1 for key in ledger.acked if key not in csms.received_ids),
        vanished=len(vanished),
        dropped=ledger.dropped,
        queued_at_end=len(ledger.queued_keys),
    )


def iter_json_lines(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    """The JSON objects of a JSON-lines file's ``lines``, skipping a torn last line (a process
    killed while writing) and anything that is not an object."""
    for line in lines:
        if not line.endswith("\n"):
            return
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value
