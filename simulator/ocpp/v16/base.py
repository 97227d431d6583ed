"""What every OCPP 1.6 payload Struct shares: the base class, the string types, the value checks.

``Payload`` fixes the wire conventions once: camelCase names, frozen instances, unknown fields
rejected, ``None`` fields left out. The ``CiString<N>``/``String<N>`` aliases carry the schemas'
``maxLength``. The ``check_*`` helpers enforce, in ``__post_init__``, the few schema constraints
msgspec cannot express in a type; they raise ``ValueError`` with a message that
``simulator.ocpp.v16.codec`` maps to an OCPP error code (see :data:`NOT_ALLOWED`,
:data:`NOT_A_TENTH`, :data:`TOO_FEW_ITEMS`), both when decoding and when our own code builds a
Struct.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection, Sized
from decimal import Decimal
from typing import Annotated, Final

import msgspec
from msgspec import Meta


class Payload(
    msgspec.Struct, rename="camel", frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Base of every OCPP 1.6 request, response and nested datatype.

    Optional fields default to ``None`` and are omitted when ``None``; on decoding, an explicit
    ``null`` is accepted as "absent" (lenient: the schemas would reject it). Arrays are tuples.
    """


CiString20 = Annotated[str, Meta(max_length=20)]
CiString25 = Annotated[str, Meta(max_length=25)]
CiString50 = Annotated[str, Meta(max_length=50)]
CiString255 = Annotated[str, Meta(max_length=255)]
CiString500 = Annotated[str, Meta(max_length=500)]
String40 = Annotated[str, Meta(max_length=40)]
String128 = Annotated[str, Meta(max_length=128)]
String512 = Annotated[str, Meta(max_length=512)]
String800 = Annotated[str, Meta(max_length=800)]
String5500 = Annotated[str, Meta(max_length=5500)]
String10000 = Annotated[str, Meta(max_length=10000)]

NOT_ALLOWED: Final = "is not allowed here"
"""Marker in the message of a value outside the (narrower) set a message allows."""
NOT_A_TENTH: Final = "is not a multiple of 0.1"
"""Marker in the message of a decimal that breaks a schema's ``multipleOf: 0.1``."""
TOO_FEW_ITEMS: Final = "must hold at least one item"
"""Marker in the message of an empty array that the schema requires to be non-empty."""


def utc_field(struct: msgspec.Struct, name: str) -> None:
    """Convert an aware datetime field to UTC in place, so that it is encoded with ``Z``.

    Naive datetimes are kept as they are (decoding stays lenient about a missing zone; such a
    value is encoded without an offset, which the schemas reject).
    """
    value = getattr(struct, name)
    if value is None or value.tzinfo is None or value.tzinfo is _dt.UTC:
        return
    try:
        utc = value.astimezone(_dt.UTC)
    except OverflowError:
        return  # year 1 or 9999 with an offset: no UTC twin in Python, keep the offset
    msgspec.structs.force_setattr(struct, name, utc)


def check_tenth(struct: msgspec.Struct, name: str) -> None:
    """Raise ``ValueError`` unless the float field is a multiple of 0.1 as written in JSON.

    The check reads the shortest decimal form of the float (what msgspec emits and what was
    received), so ``21.4`` passes although ``21.4 % 0.1`` is not 0 in binary floating point.
    """
    value = getattr(struct, name)
    if value is None:
        return
    exponent = Decimal(repr(value)).as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -1:
        raise ValueError(f"`{name}` = {value!r} {NOT_A_TENTH}")


def check_member(value: object, allowed: Collection[object], name: str) -> None:
    """Raise ``ValueError`` when ``value`` is outside the subset of its enum that ``allowed``
    holds (one enum can serve two messages that allow different subsets)."""
    if value not in allowed:
        raise ValueError(f"`{name}` value {value!s} {NOT_ALLOWED}")


def check_not_empty(items: Sized, name: str) -> None:
    """Raise ``ValueError`` when a schema-``minItems: 1`` array is empty."""
    if not items:
        raise ValueError(f"`{name}` {TOO_FEW_ITEMS}")
