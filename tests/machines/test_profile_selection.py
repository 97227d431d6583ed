"""A charger implements the feature profiles its group lists: the others answer NotSupported and
``SupportedFeatureProfiles`` lists exactly the present ones (a CSMS team tests a charger that
lacks a profile)."""

from __future__ import annotations

import pytest

from simulator.machines.charger import SUPPORTED_PROFILES, ChargerSpec, charger_profiles
from simulator.machines.profiles import ProfileHandler
from simulator.ocpp.v16 import ACTIONS, Direction
from tests.machines.pair import MachinePair


def _supported(pair: MachinePair) -> list[str]:
    call = pair.cs_call("GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert call.result is not None
    [entry] = call.result["configurationKey"]
    assert entry["readonly"] is True
    return str(entry["value"]).split(",")


def test_without_a_list_the_charger_implements_every_profile() -> None:
    pair = MachinePair()
    assert _supported(pair) == [p.value for p in SUPPORTED_PROFILES]


def test_a_listed_profile_set_is_what_the_charger_reports_and_core_is_always_there() -> None:
    pair = MachinePair(profiles=("RemoteTrigger",))
    assert _supported(pair) == ["Core", "RemoteTrigger"]


@pytest.mark.parametrize("profile", [p for p in SUPPORTED_PROFILES if p.value != "Core"])
def test_the_actions_of_a_profile_left_out_are_answered_not_supported(profile: str) -> None:
    pair = MachinePair(profiles=("Core",))
    actions = [a for a, spec in ACTIONS.items()
               if spec.profile == profile and spec.direction == Direction.CS_TO_CP]
    assert actions
    for action in actions:
        # The session refuses a call of an unsupported profile before decoding its payload.
        call = pair.cs_call(action, {})
        assert call.error == "NotSupported", (action, call)


def test_an_unknown_profile_name_is_refused_with_the_names_to_use() -> None:
    spec = ChargerSpec(identity="CP-1", vendor="Acme", model="AC22", profiles=("Core", "Bogus"))
    with pytest.raises(ValueError, match="not implemented: Bogus; use some of Core"):
        charger_profiles(spec)


def _handler_classes() -> list[type[ProfileHandler]]:
    import simulator.machines.profiles.assembly  # noqa: F401  (imports every handler)

    found: list[type[ProfileHandler]] = []
    todo = list(ProfileHandler.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _handler_classes(), ids=lambda c: c.__name__)
def test_a_handler_with_timers_says_so_or_the_charger_would_never_run_them(
    cls: type[ProfileHandler],
) -> None:
    """The charger asks only handlers whose ``has_timers`` is true for their deadlines."""
    timed = cls.next_deadline is not ProfileHandler.next_deadline \
        or cls.due is not ProfileHandler.due
    if timed:
        assert cls.has_timers is not ProfileHandler.has_timers, cls
