"""The soak's pure figures (``tools/bench/soak_figures.py``): growth after the warm-up, and the
central system's record matched against the ledger in both directions. The soak itself is not
run here (it takes half an hour)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.bench.soak_figures import (
    Accounting,
    CsmsSide,
    LedgerSide,
    account,
    growth,
    iter_json_lines,
    message_key,
)

# ---- growth -----------------------------------------------------------------------------------


def test_growth_compares_the_end_window_median_with_the_baseline_window_median() -> None:
    # A 600 s run, 100 s of warm-up: baseline [100, 160), end [475, 600].
    points: list[tuple[float, float | None]] = [
        (0, 10.0), (50, 500.0),                        # warm-up: ignored
        (100, 100.0), (110, 102.0), (120, 98.0), (150, 1000.0), (159, 100.0),  # baseline 100
        (200, 5000.0), (474, 5000.0),                  # between the windows: ignored
        (475, 104.0), (500, None), (550, 103.0), (600, 105.0),  # end 104
        (601, 9000.0),                                 # after the run (the grace): ignored
    ]
    figures = growth(points, run_s=600, warmup_s=100)
    assert (figures.baseline, figures.end, figures.delta) == (100.0, 104.0, 4.0)
    assert figures.percent == pytest.approx(4.0)


def test_a_short_run_gets_a_baseline_of_a_quarter_of_the_time_after_the_warm_up() -> None:
    # 120 s run, 20 s warm-up: baseline [20, 45), end [95, 120].
    points: list[tuple[float, float | None]] = [(20, 50.0), (44, 50.0), (45, 70.0), (95, 55.0)]
    assert growth(points, run_s=120, warmup_s=20).percent == pytest.approx(10.0)


def test_growth_without_a_sample_in_a_window_is_unknown() -> None:
    figures = growth([(10.0, 1.0)], run_s=100, warmup_s=50)
    assert (figures.baseline, figures.end, figures.delta, figures.percent) == (
        None, None, None, None)


@pytest.mark.parametrize("warmup_s", [100.0, 150.0, -1.0])
def test_a_warm_up_that_leaves_no_time_is_refused(warmup_s: float) -> None:
    with pytest.raises(ValueError, match="warm-up"):
        growth([], run_s=100, warmup_s=warmup_s)


# ---- accounting -------------------------------------------------------------------------------

METER = {"connectorId": 1, "transactionId": 7,
         "meterValue": [{"timestamp": "2026-01-01T00:00:10Z", "sampledValue": [{"value": "5"}]}]}


def test_the_content_key_ignores_the_transaction_id_and_nothing_else() -> None:
    without_id = {k: v for k, v in METER.items() if k != "transactionId"}
    later = {**METER, "meterValue": [{**METER["meterValue"][0],  # type: ignore[dict-item]
                                      "timestamp": "2026-01-01T00:00:11Z"}]}
    assert message_key("CP1", "MeterValues", METER) == message_key("CP1", "MeterValues",
                                                                   without_id)
    assert message_key("CP1", "MeterValues", METER) != message_key("CP1", "MeterValues", later)
    assert message_key("CP1", "MeterValues", METER) != message_key("CP2", "MeterValues", METER)


def call(charger: str, unique_id: str, action: str, payload: Any) -> dict[str, Any]:
    return {"kind": "message", "charger": charger, "message_type": 2, "unique_id": unique_id,
            "action": action, "payload": payload}


START = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}
STOP = {"transactionId": 7, "meterStop": 9, "timestamp": "2026-01-01T00:01:00Z"}


def csms_of(records: list[dict[str, Any]]) -> CsmsSide:
    side = CsmsSide()
    for record in records:
        side.add(record)
    return side


def ledger_of(acked: dict[tuple[str, str], tuple[str, Any]],
              unacked: tuple[tuple[str, str, Any], ...] = (),
              queued: tuple[tuple[str, str, Any], ...] = (),
              queued_stop_ids: frozenset[int] = frozenset(), dropped: int = 0) -> LedgerSide:
    """A ledger side from acknowledged calls ``(charger, id) -> (action, payload)``, calls sent
    but never acknowledged and queued messages ``(charger, action, payload)``."""
    acked_keys = {message_key(c, a, p) for (c, _), (a, p) in acked.items()}
    return LedgerSide(
        acked={key: action for key, (action, _) in acked.items()},
        acked_keys=frozenset(acked_keys),
        sent_keys=frozenset(acked_keys | {message_key(c, a, p) for c, a, p in unacked}),
        queued_keys=frozenset(message_key(c, a, p) for c, a, p in queued),
        queued_stop_ids=queued_stop_ids, dropped=dropped)


def whole_transaction() -> list[dict[str, Any]]:
    return [call("CP1", "s1", "StartTransaction", START),
            {"kind": "transaction_started", "charger": "CP1", "transaction_id": 7},
            call("CP1", "m1", "MeterValues", METER),
            call("CP1", "e1", "StopTransaction", STOP),
            {"kind": "transaction_stopped", "charger": "CP1", "transaction_id": 7}]


WHOLE_ACKED = {("CP1", "s1"): ("StartTransaction", START), ("CP1", "m1"): ("MeterValues", METER),
               ("CP1", "e1"): ("StopTransaction", STOP)}


def test_a_transaction_both_sides_agree_on_loses_nothing() -> None:
    counts = account(csms_of(whole_transaction()), ledger_of(WHOLE_ACKED))
    assert counts == Accounting(csms_started=1, csms_stopped=1, phantom_starts=0,
                                unstopped_queued=0, unstopped_lost=0, duplicate_stops=0,
                                stops_unknown=0, acked_unrecorded=0, vanished=0, dropped=0,
                                queued_at_end=0)
    assert counts.lost == 0


def without_stop() -> list[dict[str, Any]]:
    return whole_transaction()[:3]


@pytest.mark.parametrize(
    ("records", "ledger", "expected", "lost"),
    [
        pytest.param(  # the stop never reached the CS and is not queued: lost
            without_stop(),
            ledger_of({k: v for k, v in WHOLE_ACKED.items() if k[1] != "e1"}),
            {"unstopped_lost": 1, "csms_stopped": 0}, 1, id="stop-lost"),
        pytest.param(  # the stop is still in the outbox at the end: not lost
            without_stop(),
            ledger_of({k: v for k, v in WHOLE_ACKED.items() if k[1] != "e1"},
                      queued=(("CP1", "StopTransaction", STOP),), queued_stop_ids=frozenset({7})),
            {"unstopped_queued": 1, "csms_stopped": 0, "queued_at_end": 1}, 0, id="stop-queued"),
        pytest.param(  # the CS's answer to the start never arrived: the charger started again
            [call("CP1", "s0", "StartTransaction", START),
             {"kind": "transaction_started", "charger": "CP1", "transaction_id": 6},
             *whole_transaction()],
            ledger_of(WHOLE_ACKED, unacked=(("CP1", "StartTransaction", START),)),
            {"phantom_starts": 1, "csms_started": 2, "csms_stopped": 1}, 0, id="phantom-start"),
        pytest.param(  # acknowledged, yet the CS never recorded that message id
            [r for r in whole_transaction() if r.get("unique_id") != "m1"],
            ledger_of(WHOLE_ACKED), {"acked_unrecorded": 1}, 1, id="acked-unrecorded"),
        pytest.param(  # on the wire, never answered, never received, not queued: vanished
            whole_transaction(),
            ledger_of(WHOLE_ACKED, unacked=(("CP1", "MeterValues", {**METER, "x": 1}),)),
            {"vanished": 1}, 1, id="vanished"),
        pytest.param(  # unanswered once, then received under another id (a retry): fine
            whole_transaction(),
            ledger_of(WHOLE_ACKED, unacked=(("CP1", "MeterValues", METER),)), {}, 0,
            id="retried"),
        pytest.param(  # the answer to a stop was lost and the stop was sent again
            [*whole_transaction(),
             {"kind": "transaction_stopped", "charger": "CP1", "transaction_id": 7},
             {"kind": "transaction_stopped", "charger": "CP1", "transaction_id": 99}],
            ledger_of(WHOLE_ACKED, dropped=2),
            {"duplicate_stops": 1, "stops_unknown": 1, "dropped": 2}, 0, id="stops-odd"),
    ],
)
def test_each_mismatch_is_counted_where_it_belongs(
    records: list[dict[str, Any]], ledger: LedgerSide, expected: dict[str, int], lost: int
) -> None:
    clean = {"csms_started": 1, "csms_stopped": 1, "phantom_starts": 0, "unstopped_queued": 0,
             "unstopped_lost": 0, "duplicate_stops": 0, "stops_unknown": 0,
             "acked_unrecorded": 0, "vanished": 0, "dropped": 0, "queued_at_end": 0}
    counts = account(csms_of(records), ledger)
    assert counts == Accounting(**(clean | expected))
    assert counts.lost == lost


def test_a_start_is_paired_with_its_own_chargers_last_start() -> None:
    side = csms_of([call("CP1", "a", "StartTransaction", START),
                    call("CP2", "b", "StartTransaction", START),
                    {"kind": "transaction_started", "charger": "CP1", "transaction_id": 1},
                    {"kind": "transaction_started", "charger": "CP2", "transaction_id": 2}])
    assert side.starts == {1: ("CP1", "a"), 2: ("CP2", "b")}


def test_a_torn_last_line_and_non_objects_are_skipped() -> None:
    lines = ['{"kind": "a"}\n', "[1]\n", "not json\n", '{"kind": "b"}\n', '{"kind": "c"']
    assert [r["kind"] for r in iter_json_lines(lines)] == ["a", "b"]
