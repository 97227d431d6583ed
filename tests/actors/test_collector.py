"""The fleet's garbage-collection policy (pure: time and fleet counts in, an action out)."""

from __future__ import annotations

from simulator.actors.collector import (
    REFRESH_INTERVAL,
    STORM_MAX,
    STORM_QUIET,
    Action,
    CollectorPolicy,
)


def ticks(policy: CollectorPolicy, start: float, end: float, disconnections: int,
          connected: int = 1000) -> list[Action]:
    """The actions of every whole second in [start, end) with constant counts."""
    return [policy.tick(float(t), disconnections, connected)
            for t in range(int(start), int(end))]


def test_a_quiet_fleet_is_refreshed_every_interval_without_unfreezing() -> None:
    policy = CollectorPolicy(size=1000, now=0.0)
    actions = ticks(policy, 1, 2 * REFRESH_INTERVAL + 1, 0)
    assert [a for a in actions if a is not Action.NOTHING] == [Action.REFRESH, Action.REFRESH]
    assert actions[int(REFRESH_INTERVAL) - 1] is Action.REFRESH


def test_a_refresh_after_drops_unfreezes_first() -> None:
    """A connection frozen while alive leaves its cycles in the permanent generation when it
    drops: the next refresh must traverse that generation too."""
    policy = CollectorPolicy(size=1000, now=0.0)
    assert policy.tick(10.0, 3, 997) is Action.NOTHING  # 3 drops: not a storm (50 would be)
    actions = ticks(policy, 11, REFRESH_INTERVAL + 1, 3)
    assert [a for a in actions if a is not Action.NOTHING] == [Action.FULL_REFRESH]
    later = ticks(policy, REFRESH_INTERVAL + 1, 2 * REFRESH_INTERVAL + 1, 3)
    assert [a for a in later if a is not Action.NOTHING] == [Action.REFRESH]


def test_a_mass_drop_refreshes_at_once_collects_while_it_lasts_then_freezes() -> None:
    policy = CollectorPolicy(size=1000, now=0.0)
    assert policy.tick(99.0, 0, 1000) is Action.NOTHING
    assert policy.tick(100.0, 49, 951) is Action.NOTHING  # 4.9 % within one tick
    assert policy.tick(101.0, 49 + 50, 901) is Action.FULL_REFRESH  # 5 %: the storm starts
    assert policy.storming
    assert policy.tick(102.0, 400, 600) is Action.COLLECT  # more drop: it goes on
    quiet = ticks(policy, 103, 102 + STORM_QUIET, 400, connected=1000)
    assert quiet == [Action.COLLECT] * len(quiet)
    assert policy.tick(102.0 + STORM_QUIET, 400, 1000) is Action.FULL_REFRESH  # over: freeze
    assert not policy.storming
    assert policy.tick(103.0 + STORM_QUIET, 400, 1000) is Action.NOTHING


def test_a_storm_lasts_until_the_fleet_is_back_or_its_longest() -> None:
    """The reconnections make garbage too (handshakes, boots, replayed queues): the storm goes
    on while the fleet comes back, but not forever when its CSMS stays away."""
    policy = CollectorPolicy(size=1000, now=0.0)
    assert policy.tick(1.0, 0, 1000) is Action.NOTHING
    assert policy.tick(2.0, 1000, 0) is Action.FULL_REFRESH  # the CSMS went away
    coming_back = [policy.tick(2.0 + s, 1000, 20 * s) for s in range(1, 40)]  # 20 a second
    assert set(coming_back) == {Action.COLLECT}
    # back within 5 %: over (nothing dropped since the storm's own full refresh: a plain one)
    assert policy.tick(42.0, 1000, 960) is Action.REFRESH

    stuck = CollectorPolicy(size=1000, now=0.0)
    stuck.tick(1.0, 0, 1000)
    assert stuck.tick(2.0, 1000, 0) is Action.FULL_REFRESH
    held = ticks(stuck, 3, 2 + STORM_MAX, 1000, connected=0)
    assert set(held) == {Action.COLLECT}
    assert stuck.tick(2.0 + STORM_MAX, 1000, 0) is Action.REFRESH
    assert not stuck.storming


def test_a_storm_counts_drops_per_tick_not_in_total() -> None:
    policy = CollectorPolicy(size=100, now=0.0)
    actions = [policy.tick(float(t), t * 4, 100) for t in range(1, 60)]  # 4 % every second
    assert Action.COLLECT not in actions
    assert Action.FULL_REFRESH not in actions


def test_a_tiny_fleet_storms_on_one_drop() -> None:
    policy = CollectorPolicy(size=3, now=0.0)
    assert policy.tick(1.0, 1, 2) is Action.FULL_REFRESH
