"""Stage 4 of loading: the document's structure and types, checked against the file tables.

:func:`check_document` walks the plain data (from TOML, after interpolation and overrides) beside
the type tree that msgspec derives from :class:`~simulator.config.tables.FleetDocument`
(``msgspec.inspect``), and raises :class:`~simulator.config.errors.Invalid` at the first value that
does not fit: an unknown key (with a suggestion), a missing required key, a wrong type, a number
out of bounds, a string or list of the wrong length. The wording is ours; msgspec's messages are
never parsed. Keys are visited in the order written, then missing keys in declaration order.

Once the check passes, :func:`to_document` converts the data with ``msgspec.convert``. A failure
there means this checker missed a rule: it is still reported as one line, located by the
``$.path`` that msgspec gives (the only part of its message used).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sized
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from simulator.config.errors import FieldPath, Invalid, field_name, show, suggest
from simulator.config.tables import FleetDocument

_DOCUMENT: Final = mi.type_info(FleetDocument)

_TYPE_WORDS: Final[Mapping[type[mi.Type], str]] = {
    mi.IntType: "an integer",
    mi.FloatType: "a number",
    mi.StrType: "a string",
    mi.BoolType: "true or false",
    mi.VarTupleType: "a list",
    mi.ListType: "a list",
    mi.DictType: "a table",
    mi.StructType: "a table",
    mi.DateTimeType: "a date-time",
    mi.DateType: "a date",
    mi.TimeType: "a time",
}
_SCALARS: Final = frozenset({mi.StrType, mi.IntType, mi.FloatType, mi.BoolType})
_LOCATION: Final = re.compile(r"`\$(?P<path>[^`]*)`")


def check_document(data: Mapping[str, Any]) -> None:
    """Raise :class:`Invalid` at the first value of ``data`` that does not fit the fleet file's
    tables; return if the whole document fits."""
    _check(data, _DOCUMENT, ())


def to_document(data: Mapping[str, Any]) -> FleetDocument:
    """``data`` checked (:func:`check_document`) and converted into a :class:`FleetDocument`;
    raises :class:`Invalid`."""
    check_document(data)
    try:
        return msgspec.convert(data, FleetDocument)
    except msgspec.ValidationError as error:
        where = _LOCATION.search(str(error))
        path = _parse_location(where.group("path")) if where else ()
        raise Invalid(
            path, "does not fit the fleet file format; `sim schema` shows what each key takes"
        ) from None


def _flatten(kind: mi.Type) -> tuple[list[mi.Type], dict[str, Any]]:
    """The alternatives of a (possibly annotated, possibly nested) union, and the merged
    ``Meta(extra=...)`` of its annotations."""
    if isinstance(kind, mi.Metadata):
        branches, extra = _flatten(kind.type)
        return branches, {**extra, **(kind.extra or {})}
    if isinstance(kind, mi.UnionType):
        members: list[mi.Type] = []
        merged: dict[str, Any] = {}
        for member in kind.types:
            more, more_extra = _flatten(member)
            members += more
            merged = {**more_extra, **merged}
        return members, merged
    return [kind], {}


def _pick(value: object, branches: list[mi.Type]) -> mi.Type | None:
    """The alternative that takes ``value`` as msgspec would, or ``None``."""
    wanted: tuple[type[mi.Type], ...]
    if isinstance(value, bool):
        wanted = (mi.BoolType,)
    elif isinstance(value, int):
        wanted = (mi.IntType, mi.FloatType)
    elif isinstance(value, float):
        wanted = (mi.FloatType,)
    elif isinstance(value, str):
        wanted = (mi.StrType,)
    elif isinstance(value, dict):
        wanted = (mi.StructType, mi.DictType)
    elif isinstance(value, list | tuple):
        wanted = (mi.VarTupleType, mi.ListType)
    elif value is None:
        wanted = (mi.NoneType,)
    elif isinstance(value, dt.datetime):
        wanted = (mi.DateTimeType,)
    elif isinstance(value, dt.date):
        wanted = (mi.DateType,)
    elif isinstance(value, dt.time):
        wanted = (mi.TimeType,)
    else:
        wanted = ()
    accepted: tuple[type[mi.Type], ...] = (*wanted, mi.AnyType)
    for kind in accepted:
        for branch in branches:
            if isinstance(branch, kind):
                return branch
    return None


def _expected(branches: list[mi.Type], extra: Mapping[str, Any]) -> str:
    if "expected" in extra:
        return str(extra["expected"])
    kinds = {type(branch) for branch in branches} - {mi.NoneType}
    if kinds == _SCALARS:
        return "a string, a number or true/false"
    if {mi.IntType, mi.FloatType} <= kinds:
        kinds.discard(mi.IntType)
    known = list(_TYPE_WORDS)
    ordered = sorted(kinds, key=lambda kind: known.index(kind) if kind in known else len(known))
    words = dict.fromkeys(_TYPE_WORDS.get(kind, kind.__name__) for kind in ordered)
    return " or ".join(words)


def _got(value: object) -> str:
    if isinstance(value, bool):
        return show(value)
    words = {str: "a string", int: "an integer", float: "a number"}
    for kind, word in words.items():
        if isinstance(value, kind):
            return f"{word} {show(value)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dt.datetime):
        return f"a date-time {show(value)}"
    if isinstance(value, dt.date):
        return f"a date {show(value)}"
    if isinstance(value, dt.time):
        return f"a time {show(value)}"
    return "nothing" if value is None else type(value).__name__


def _check(value: object, kind: mi.Type, path: FieldPath) -> None:
    branches, extra = _flatten(kind)
    branch = _pick(value, branches)
    if branch is None:
        if isinstance(value, dict) and any(_is_list_of_tables(b) for b in branches):
            header = field_name(path)
            raise Invalid(path, f"must be written [[{header}]] (a list of tables), not [{header}]")
        raise Invalid(path, f"must be {_expected(branches, extra)}, got {_got(value)}")
    match branch:
        case mi.IntType() | mi.FloatType():
            assert isinstance(value, int | float)
            _check_bounds(value, branch, path)
        case mi.StrType():
            assert isinstance(value, str)
            _check_text(value, branch, path)
        case mi.VarTupleType() | mi.ListType():
            assert isinstance(value, list | tuple)
            _check_size(value, branch.min_length, branch.max_length, path, extra)
            for index, item in enumerate(value):
                _check(item, branch.item_type, (*path, index))
        case mi.DictType():
            assert isinstance(value, dict)
            _check_size(value, branch.min_length, branch.max_length, path, extra)
            for key, item in value.items():
                _check(key, branch.key_type, (*path, key))
                _check(item, branch.value_type, (*path, key))
        case mi.StructType():
            assert isinstance(value, dict)
            _check_table(value, branch, path)


def _is_list_of_tables(kind: mi.Type) -> bool:
    return isinstance(kind, mi.VarTupleType | mi.ListType) and isinstance(
        _flatten(kind.item_type)[0][0], mi.StructType | mi.DictType
    )


def _bound(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


def _check_bounds(value: float, kind: mi.IntType | mi.FloatType, path: FieldPath) -> None:
    rules: tuple[tuple[float | None, str, Callable[[float], bool]], ...] = (
        (kind.ge, ">=", lambda limit: value >= limit),
        (kind.gt, ">", lambda limit: value > limit),
        (kind.le, "<=", lambda limit: value <= limit),
        (kind.lt, "<", lambda limit: value < limit),
    )
    for limit, sign, holds in rules:
        if limit is not None and not holds(limit):  # a NaN holds no bound
            raise Invalid(path, f"must be {sign} {_bound(limit)}, got {show(value)}")


def _check_text(value: str, kind: mi.StrType, path: FieldPath) -> None:
    size = len(value)
    if kind.max_length is not None and size > kind.max_length:
        raise Invalid(
            path, f"must be at most {kind.max_length} characters long, got {size} ({show(value)})"
        )
    if kind.min_length is not None and size < kind.min_length:
        raise Invalid(
            path, f"must be at least {kind.min_length} characters long, got {size} ({show(value)})"
        )
    if kind.pattern is not None and re.search(kind.pattern, value) is None:
        raise Invalid(path, f"{show(value)} must match the pattern {kind.pattern}")


def _check_size(
    items: Sized,
    least: int | None,
    most: int | None,
    path: FieldPath,
    extra: Mapping[str, Any],
) -> None:
    if least is not None and len(items) < least:
        if "hint" in extra:
            raise Invalid(path, f"is empty; {extra['hint']}")
        raise Invalid(path, f"must list at least {least} item(s)")
    if most is not None and len(items) > most:
        raise Invalid(path, f"must list at most {most} item(s), got {len(items)}")


def _check_table(value: dict[str, Any], kind: mi.StructType, path: FieldPath) -> None:
    fields = {field.encode_name: field for field in kind.fields}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            if not kind.forbid_unknown_fields:
                continue
            known = list(fields)
            raise Invalid(
                (*path, key), f"unknown key{suggest(key, known)} (known keys: {', '.join(known)})"
            )
        _check(item, field.type, (*path, key))
    for key, field in fields.items():
        if field.required and key not in value:
            hint = _flatten(field.type)[1].get("hint", "add it")
            raise Invalid((*path, key), f"is required; {hint}")


def _parse_location(text: str) -> FieldPath:
    parts: list[str | int] = []
    for key, index, quoted in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\"([^\"]*)\"\]", text):
        if key:
            parts.append(key)
        elif index:
            parts.append(int(index))
        else:
            parts.append(quoted)
    return tuple(parts)
