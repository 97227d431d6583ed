"""Payload surgery for the protocol faults: a minimal valid payload for any action, and a payload
broken in exactly one named way (the kinds of ``schema_violation``). Pure (no trio, no I/O).

Both read the shape of a payload from the protocol version's payload Structs (through
``msgspec.inspect``), which mirror the official 1.6 JSON schemas field for field: required
fields, JSON types, enums, ``maxLength``, and ``additionalProperties: false`` (unknown fields
forbidden). A break acts on one top-level member of the payload, so the official schema rejects
the result for that one reason and no other:

| kind              | what changes                                          | schema keyword   |
|-------------------|-------------------------------------------------------|------------------|
| missing_field     | a required member is left out                         | required         |
| wrong_type        | a member gets a value of another JSON type            | type             |
| bad_enum          | an enumerated member gets a value outside its enum    | enum             |
| extra_property    | a member the schema does not have is added            | additionalProperties |
| overlong_string   | a string member one or more characters over its limit | maxLength        |

A member already in the payload is preferred; an optional member that is absent is used when none
of those can be broken that way. ``wrong_type`` never picks an enumerated member (a non-string
would break the enum too). A payload with no member of the right sort (Heartbeat has none at all
but ``extra_property``) cannot be broken that way: :func:`break_payload` returns ``None``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from simulator.seeds import Rng

__all__ = ["EXTRA_PROPERTY", "NOT_A_MEMBER", "ViolationKind", "break_payload", "minimal_payload"]


class ViolationKind(enum.StrEnum):
    """The ``kind`` parameter of ``schema_violation``."""

    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_ENUM = "bad_enum"
    EXTRA_PROPERTY = "extra_property"
    OVERLONG_STRING = "overlong_string"


NOT_A_MEMBER: Final = "NotInTheEnum"
"""The value ``bad_enum`` gives (no 1.6 enum has it)."""
EXTRA_PROPERTY: Final = "chaosExtraProperty"
"""The member ``extra_property`` adds (no 1.6 payload has it)."""
_WRONG_FOR_STRINGS: Final = 12
"""What ``wrong_type`` puts where a string (or a date-time) belongs."""
_WRONG_FOR_OTHERS: Final = "12"
"""What ``wrong_type`` puts where a number, boolean, array or object belongs."""
_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"

_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_encoder: Final = msgspec.json.Encoder()


def _unwrap(kind: mi.Type) -> mi.Type:
    """The type of an optional member without its ``None``."""
    if isinstance(kind, mi.UnionType):
        others = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        if len(others) == 1:
            return others[0]
    return kind


def _struct_info(struct: type[msgspec.Struct]) -> mi.StructType:
    info = mi.type_info(struct)
    if not isinstance(info, mi.StructType):
        raise TypeError(f"{struct!r} is not a payload Struct")
    return info


def _fields(info: mi.StructType, present: dict[str, Any]) -> list[mi.Field]:
    """The members in ``info``'s order, those present in the payload first."""
    return sorted(info.fields, key=lambda f: f.encode_name not in present)


def _pick(rng: Rng, fields: list[mi.Field], present: dict[str, Any]) -> mi.Field | None:
    """One of ``fields`` (seeded), among those present in the payload if any are."""
    if not fields:
        return None
    there = [f for f in fields if f.encode_name in present]
    return rng.choice(there or fields)


def _overlong(rng: Rng, limit: int) -> str:
    """A seeded string of ``limit + 1`` to ``2 * limit + 1`` letters."""
    length = limit + 1 + int(rng.random() * (limit + 1))
    return "".join(rng.choice(_LETTERS) for _ in range(length))


def break_payload(
    struct: type[msgspec.Struct], payload: bytes, kind: ViolationKind, rng: Rng
) -> bytes | None:
    """``payload`` (a JSON object valid for ``struct``) broken in the one way ``kind`` names (see
    the module docstring), re-encoded; ``None`` when ``struct`` offers no member to break that
    way. Raises ``msgspec.DecodeError`` when ``payload`` is not a JSON object."""
    info = _struct_info(struct)
    members = _decoder.decode(payload)
    match kind:
        case ViolationKind.MISSING_FIELD:
            field = _pick(rng, [f for f in info.fields if f.required and f.encode_name in members],
                          members)
            if field is None:
                return None
            del members[field.encode_name]
        case ViolationKind.WRONG_TYPE:
            field = _pick(rng, [f for f in info.fields
                                if not isinstance(_unwrap(f.type), mi.EnumType)], members)
            if field is None:
                return None
            strings = (mi.StrType, mi.DateTimeType)
            members[field.encode_name] = (
                _WRONG_FOR_STRINGS if isinstance(_unwrap(field.type), strings)
                else _WRONG_FOR_OTHERS
            )
        case ViolationKind.BAD_ENUM:
            field = _pick(rng, [f for f in info.fields
                                if isinstance(_unwrap(f.type), mi.EnumType)], members)
            if field is None:
                return None
            members[field.encode_name] = NOT_A_MEMBER
        case ViolationKind.EXTRA_PROPERTY:
            if not info.forbid_unknown_fields:
                return None
            members[EXTRA_PROPERTY] = 1
        case ViolationKind.OVERLONG_STRING:
            bounded = [f for f in info.fields if _max_length(f.type) is not None]
            field = _pick(rng, bounded, members)
            if field is None:
                return None
            limit = _max_length(field.type)
            assert limit is not None
            members[field.encode_name] = _overlong(rng, limit)
    return _encoder.encode(members)


def _max_length(kind: mi.Type) -> int | None:
    inner = _unwrap(kind)
    return inner.max_length if isinstance(inner, mi.StrType) else None


def minimal_payload(struct: type[msgspec.Struct], wall: dt.datetime) -> bytes:
    """A valid payload for ``struct`` with only its required members (arrays with one item,
    date-times set to ``wall``, enums their first allowed member, numbers their lowest allowed
    value). Raises ``ValueError`` when the Struct refuses every candidate (no 1.6 action does)."""
    values = _example(_struct_info(struct), wall)
    return _encoder.encode(msgspec.convert(values, struct))


def _example(info: mi.StructType, wall: dt.datetime) -> dict[str, Any]:
    return {f.encode_name: _value(f.type, wall) for f in info.fields if f.required}


_SIMPLE: Final[dict[type[mi.Type], Callable[[mi.Type, dt.datetime], Any]]] = {
    mi.BoolType: lambda kind, wall: False,
    mi.FloatType: lambda kind, wall: 0.0,
    mi.DateTimeType: lambda kind, wall: wall.isoformat().replace("+00:00", "Z"),
}


def _value(kind: mi.Type, wall: dt.datetime) -> Any:
    kind = _unwrap(kind)
    simple = _SIMPLE.get(type(kind))
    if simple is not None:
        return simple(kind, wall)
    match kind:
        case mi.StrType(min_length=low, max_length=high):
            return "x" * max(1, low or 0) if high is None or high >= 1 else ""
        case mi.IntType(ge=ge, gt=gt):
            return ge if ge is not None else (gt + 1 if gt is not None else 0)
        case mi.EnumType(cls=members):
            return next(iter(members)).value
        case mi.VarTupleType(item_type=item) | mi.ListType(item_type=item):
            return [_value(item, wall)]
        case mi.StructType():
            return _example(kind, wall)
    raise TypeError(f"no example for payload member type {kind!r}")
