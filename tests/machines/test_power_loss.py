"""A charger that loses power (its actor crashed, or the simulator was killed) and comes back.

The machine's memory (:class:`~simulator.machines.effects.ChargerMemory`, carried by every outbox
snapshot) is what a real charger keeps in flash: the energy registers, its numbering, and the
transactions that were running. A charger built again from the last snapshot and memory must
behave like a real one after a power loss: the transactions that were running are stopped with
reason PowerLoss and the last meter value known, the messages queued before are kept and go
first, local transaction ids and outbox seqs never repeat, and the registers go on. With
write-ahead, a transaction message goes on the wire only once a snapshot holding it is stored.
"""

from __future__ import annotations

from simulator.events import TransactionStarted, TransactionStopped

from .pair import MachinePair
from .test_charger import TAG, register, start_charging, tx_messages


def charging_then_lost() -> MachinePair:
    """A charger 130 s into a transaction (MeterValues every 60 s), when the power goes."""
    first = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0})
    start_charging(first)
    first.advance(130)
    assert [r.action for r in tx_messages(first)] == ["StartTransaction", "MeterValues",
                                                       "MeterValues"]
    return first


def test_the_transaction_running_at_a_power_loss_is_stopped_with_power_loss() -> None:
    first = charging_then_lost()
    memory = first.memory
    assert memory is not None and len(memory.open_transactions) == 1
    tx_id = first.cs.transaction_id_of(tx_messages(first)[0])
    last_register = register(tx_messages(first)[-1])

    before = len(tx_messages(first))
    second = MachinePair(cs=first.cs, outbox=first.outbox, memory=memory)
    second.advance(5)
    [stop] = tx_messages(second)[before:]  # (the same CS: the first life's messages before)
    assert stop.action == "StopTransaction"
    assert stop.payload["reason"] == "PowerLoss"
    assert stop.payload["transactionId"] == tx_id
    assert stop.payload["meterStop"] == int(last_register)  # the last value it knew
    [stopped] = second.events_of(TransactionStopped)
    assert (stopped.reason, stopped.transaction_id) == ("PowerLoss", tx_id)
    assert second.memory is not None and second.memory.open_transactions == ()


def test_messages_queued_before_the_loss_go_first_then_the_power_loss_stop() -> None:
    first = MachinePair(config={"MeterValueSampleInterval": 60, "ClockAlignedDataInterval": 0,
                                "AllowOfflineTxForUnknownId": True})
    first.disconnect()
    start_charging(first)  # offline: StartTransaction and MeterValues wait in the outbox
    first.advance(130)
    queued = [e.action for e in first.outbox]
    assert queued == ["StartTransaction", "MeterValues", "MeterValues"]

    second = MachinePair(outbox=first.outbox, memory=first.memory)
    second.advance(5)
    messages = tx_messages(second)
    assert [r.action for r in messages] == [*queued, "StopTransaction"]
    tx_id = second.cs.transaction_id_of(messages[0])
    assert [r.payload["transactionId"] for r in messages[1:]] == [tx_id] * 3
    assert messages[-1].payload["reason"] == "PowerLoss"


def test_local_ids_and_seqs_never_repeat_and_the_register_goes_on() -> None:
    first = charging_then_lost()
    memory = first.memory
    assert memory is not None
    first_stop = first.machine.statistics().energy_wh[0]
    second = MachinePair(cs=first.cs, outbox=first.outbox, memory=memory)
    second.advance(5)
    second.unplug()
    second.advance(5)
    start_charging(second, tag=TAG)
    second.advance(10)
    [started] = second.events_of(TransactionStarted)
    assert started.local_id == memory.next_local_tx == 2
    assert started.meter_start >= int(memory.registers_wh[0]) > 0
    assert memory.registers_wh[0] <= first_stop
    seqs = sorted(second.seen_seqs)
    assert seqs[0] >= memory.next_seq  # nothing of the first life's numbering again
    starts = [r for r in tx_messages(second) if r.action == "StartTransaction"]
    assert starts[-1].payload["meterStart"] >= int(memory.registers_wh[0])


def test_a_charger_without_memory_starts_from_zero_with_nothing_to_stop() -> None:
    pair = MachinePair()
    pair.advance(5)
    assert not pair.events_of(TransactionStopped)
    start_charging(pair)
    assert pair.events_of(TransactionStarted)[0].local_id == 1
    assert pair.events_of(TransactionStarted)[0].meter_start == 0


def test_write_ahead_holds_each_transaction_message_until_its_snapshot_is_stored() -> None:
    pair = MachinePair(write_ahead=True, config={"MeterValueSampleInterval": 60,
                                                 "ClockAlignedDataInterval": 0})
    start_charging(pair)
    pair.advance(1)
    assert tx_messages(pair) == []  # queued and handed to storage, not sent
    # (the power-on's security event waits in the same outbox)
    assert [e.action for e in pair.outbox] == ["SecurityEventNotification", "StartTransaction"]
    pair.store()
    assert [r.action for r in tx_messages(pair)] == ["StartTransaction"]
    pair.advance(60)  # the first sample, queued: stays until stored
    assert [r.action for r in tx_messages(pair)] == ["StartTransaction"]
    pair.store()
    assert [r.action for r in tx_messages(pair)] == ["StartTransaction", "MeterValues"]
    # the heartbeat and the CS's calls do not wait for storage
    call = pair.cs_call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert call.result is not None


def test_write_ahead_a_restored_outbox_is_stored_already() -> None:
    first = MachinePair(config={"AllowOfflineTxForUnknownId": True})
    first.disconnect()
    start_charging(first)
    second = MachinePair(outbox=first.outbox, memory=first.memory, write_ahead=True)
    second.advance(5)
    assert [r.action for r in tx_messages(second)][:1] == ["StartTransaction"]
