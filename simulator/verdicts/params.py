"""What a check takes: its parameters, read from the check function's own signature, and the
binding of an ``[[expect]]`` table's values to them.

A check is a function ``check(run, *, name: T = default, ...) -> Outcome | bool``: its first
parameter is the run (:class:`~simulator.verdicts.ledger.RunLedger`), every other one is
keyword-only and is a parameter of the ``[[expect]]`` table, required when it has no default.
``T`` says what the table may write: ``int``, ``float`` (any number), ``str``, ``bool``,
:data:`Duration` (``"2s"``, ``"500ms"`` or a number of seconds; the check gets float seconds) or
:data:`Share` (a number from 0 to 1); ``T | None`` with a ``None`` default makes it optional.
Binding raises :class:`ExpectError` naming the parameter and what to write instead.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

from simulator.config.errors import suggest
from simulator.durations import DurationError, parse_duration

Scalar = str | int | float | bool
"""A value as an ``[[expect]]`` table writes it."""


class Kind(enum.Enum):
    """What a check parameter takes, and how the table writes it."""

    DURATION = 'a duration such as "2s" or "500ms", or a number of seconds'
    SHARE = "a number from 0 to 1"
    NUMBER = "a number"
    INTEGER = "an integer"
    TEXT = "a string"
    FLAG = "true or false"


Duration = Annotated[float, Kind.DURATION]
"""A check parameter written as a duration; the check gets float seconds."""
Share = Annotated[float, Kind.SHARE]
"""A check parameter written as a number from 0 to 1."""

_PLAIN: Final[Mapping[object, Kind]] = {
    bool: Kind.FLAG, int: Kind.INTEGER, float: Kind.NUMBER, str: Kind.TEXT,
}


class ExpectError(Exception):
    """An ``[[expect]]`` table a check cannot take. ``key`` is the table's key at fault
    (``None``: the table as a whole), ``message`` says what to write instead."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class CheckDefinitionError(Exception):
    """A check function whose signature a fleet file cannot call (a user check's bug)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a check: its ``kind``, and its ``default`` when not ``required``."""

    name: str
    kind: Kind
    required: bool
    default: object = None


def params_of(function: Callable[..., Any], label: str) -> dict[str, Param]:
    """The parameters of check ``function`` (``label`` names it in errors), in signature order.
    Raises :class:`CheckDefinitionError` for a signature a fleet file cannot call."""
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function, include_extras=True)
    except (TypeError, ValueError, NameError) as error:
        raise CheckDefinitionError(f"{label}: cannot read its signature ({error})") from None
    if not signature.parameters:
        raise CheckDefinitionError(f"{label}: must take the run as its first parameter")
    found: dict[str, Param] = {}
    for position, parameter in enumerate(signature.parameters.values()):
        if position == 0 and parameter.kind in (parameter.POSITIONAL_ONLY,
                                                parameter.POSITIONAL_OR_KEYWORD):
            continue  # the run
        if parameter.kind is not parameter.KEYWORD_ONLY:
            raise CheckDefinitionError(
                f"{label}: take the run as the only positional parameter and the expectation's"
                f" parameters keyword-only (after *); {parameter.name!r} is not")
        kind = _kind(hints.get(parameter.name, Any))
        if kind is None:
            raise CheckDefinitionError(
                f"{label}: parameter {parameter.name!r} must be annotated int, float, str, bool,"
                " Duration or Share (optionally | None)")
        required = parameter.default is parameter.empty
        found[parameter.name] = Param(parameter.name, kind, required,
                                      None if required else parameter.default)
    return found


def _kind(annotation: object) -> Kind | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _kind(members[0]) if len(members) == 1 else None
    if typing.get_origin(annotation) is Annotated:
        for extra in getattr(annotation, "__metadata__", ()):
            if isinstance(extra, Kind):
                return extra
        return _kind(typing.get_args(annotation)[0])
    return _PLAIN.get(annotation)


def bind(check: str, params: Mapping[str, Param], written: Mapping[str, Scalar]
         ) -> dict[str, Any]:
    """The keyword arguments for check ``check`` from an ``[[expect]]`` table's ``written``
    values (every key but ``check``); raises :class:`ExpectError`."""
    for key in written:
        if key not in params:
            takes = ", ".join(params) if params else "no parameters"
            hint = suggest(key, list(params))
            raise ExpectError(key, f"check {check!r} does not take {key!r}{hint}"
                                   f" (it takes: {takes})")
    bound: dict[str, Any] = {}
    for name, param in params.items():
        if name in written:
            bound[name] = convert(check, param, written[name])
        elif param.required:
            raise ExpectError(name, f"is required by check {check!r}: {param.kind.value}")
        else:
            bound[name] = param.default
    return bound


def convert(check: str, param: Param, value: Scalar) -> Any:
    """``value`` as check ``check``'s parameter ``param`` takes it; raises
    :class:`ExpectError`."""
    wrong = ExpectError(param.name, f"check {check!r} takes {param.kind.value} here,"
                                    f" got {value!r}")
    match param.kind:
        case Kind.DURATION:
            if isinstance(value, bool):
                raise wrong
            try:
                return parse_duration(value)
            except DurationError as error:
                raise ExpectError(param.name, str(error)) from None
        case Kind.SHARE:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 <= value <= 1:
                raise wrong
            return float(value)
        case Kind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise wrong
            return float(value)
        case Kind.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong
            return value
        case Kind.TEXT:
            if not isinstance(value, str):
                raise wrong
            return value
        case Kind.FLAG:
            if not isinstance(value, bool):
                raise wrong
            return value


