"""The checks an ``[[expect]]`` table may name: the built-in ones, and users' checks registered
by entry point in the group :data:`ENTRY_POINT_GROUP`.

A user's check is a small function (see :mod:`simulator.verdicts.params` for its signature),
registered in the package that ships it::

    [project.entry-points."ocpp_chaos_sim.checks"]
    few_heartbeats = "my_checks:few_heartbeats"

The entry point's name is the check's name; a built-in check of the same name wins. Only a
check a fleet file names is imported. :func:`check_expectations` is what ``sim check`` and
``sim start`` run before anything else: an unknown check, a parameter a check does not take, a
value of the wrong kind, or a user check that cannot be loaded is one :class:`ExpectError`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from simulator.config import Expect
from simulator.config.errors import one_of
from simulator.verdicts import fleet, wire
from simulator.verdicts.ledger import Outcome, RunLedger
from simulator.verdicts.params import CheckDefinitionError, ExpectError, Param, bind, params_of

ENTRY_POINT_GROUP: Final = "ocpp_chaos_sim.checks"
"""The entry-point group in which packages register their checks."""

CheckFunction = Callable[..., Outcome | bool]
"""``check(run: RunLedger, **params) -> Outcome | bool``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """A check: its ``name``, ``function``, ``params`` (from its signature), where it comes from
    (``origin``: ``"built in"`` or the entry point's ``module:attribute``) and, for a built-in
    one, a ``validate`` of its bound parameters together (raises :class:`ExpectError`)."""

    name: str
    function: CheckFunction
    params: Mapping[str, Param]
    origin: str
    validate: Callable[[dict[str, Any]], None] | None = None

    @property
    def built_in(self) -> bool:
        """Whether the simulator ships it (a user's check's failures are caught and shown)."""
        return self.origin == BUILT_IN

    def bind(self, written: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for this check from an ``[[expect]]`` table's values;
        raises :class:`ExpectError`."""
        bound = bind(self.name, self.params, written)
        if self.validate is not None:
            self.validate(bound)
        return bound

    def __call__(self, run: RunLedger, params: Mapping[str, Any]) -> Outcome:
        """Run the check on ``run`` with bound ``params``; a ``bool`` answer becomes an
        :class:`Outcome` saying only passed or failed."""
        answer = self.function(run, **params)
        if isinstance(answer, Outcome):
            return answer
        if isinstance(answer, bool):
            return Outcome(passed=answer, measured="passed" if answer else "failed")
        raise TypeError(f"check {self.name!r} ({self.origin}) returned {answer!r}, not an"
                        " Outcome or a bool")


BUILT_IN: Final = "built in"


def _built_in(function: CheckFunction,
              validate: Callable[[dict[str, Any]], None] | None = None) -> Check:
    name = function.__name__
    return Check(name, function, params_of(function, name), BUILT_IN, validate)


BUILT_INS: Final[Mapping[str, Check]] = {
    check.name: check for check in (
        _built_in(fleet.no_lost_transactions),
        _built_in(wire.latency, wire.check_latency),
        _built_in(wire.schema_clean),
        _built_in(wire.error_codes),
        _built_in(fleet.reconnect, fleet.check_reconnect),
        _built_in(fleet.boot_accepted),
        _built_in(wire.max_errors, wire.check_max_errors),
    )
}
"""The checks the simulator ships, by name."""


def _registered() -> dict[str, importlib.metadata.EntryPoint]:
    return {point.name: point
            for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def check_names() -> list[str]:
    """Every check a fleet file may name: the built-in ones, then the registered ones."""
    return [*BUILT_INS, *sorted(set(_registered()) - set(BUILT_INS))]


def find_check(name: str) -> Check:
    """The check called ``name``. Raises :class:`ExpectError` (at ``check``) for a name no
    check has, or a registered check that cannot be loaded or called."""
    if name in BUILT_INS:
        return BUILT_INS[name]
    point = _registered().get(name)
    if point is None:
        raise ExpectError("check", f"unknown check {name!r}; {one_of(name, check_names())}")
    try:
        function = point.load()
    except Exception as error:  # a user's package: anything may go wrong importing it
        raise ExpectError("check", f"check {name!r} is registered as {point.value!r} but cannot"
                                   f" be loaded: {type(error).__name__}: {error}") from None
    if not callable(function):
        raise ExpectError("check", f"check {name!r} ({point.value}) is not a function")
    try:
        params = params_of(function, f"check {name!r} ({point.value})")
    except CheckDefinitionError as error:
        raise ExpectError("check", str(error)) from None
    return Check(name, function, params, point.value)


class ExpectationError(Exception):
    """``[[expect]]`` table ``index`` (0-based) cannot be checked: ``error`` says where and
    why."""

    def __init__(self, index: int, error: ExpectError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


def check_expectations(expectations: Sequence[Expect]) -> list[tuple[Check, dict[str, Any]]]:
    """Each expectation's check and bound parameters, in order. Raises
    :class:`ExpectationError` at the first one that names no check, or gives its check a
    parameter it does not take or a value it cannot use."""
    found = []
    for index, expect in enumerate(expectations):
        try:
            check = find_check(expect.check)
            found.append((check, check.bind(expect.params)))
        except ExpectError as error:
            raise ExpectationError(index, error) from None
    return found
