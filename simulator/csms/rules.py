"""Pure decision rules of the reference CSMS: idTag status, admission, meter readings, timestamps.

Small functions with no state, so that the tables in the tests can hit each rule directly:
which idTag is Accepted/Blocked/Expired/Invalid, whether a WebSocket handshake may proceed (the
HTTP status to refuse it with), what Energy.Active.Import.Register reading in Wh a MeterValue
carries, and what is odd about a timestamp a charge point sent.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Final

from simulator.csms.options import CsmsOptions
from simulator.csms.records import AnomalyKind

ANCIENT: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Timestamps before this come from a charger whose clock was never set (1970...)."""

ENERGY_REGISTER: Final = "Energy.Active.Import.Register"

HTTP_UNAUTHORIZED: Final = 401
HTTP_NOT_FOUND: Final = 404


def matches(value: str, patterns: Iterable[str]) -> bool:
    """True if ``value`` matches one of the ``fnmatch`` patterns (case-sensitive)."""
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def tag_status(options: CsmsOptions, id_tag: str) -> str:
    """The idTagInfo status for ``id_tag`` from the tag rules alone (no ConcurrentTx here):
    blocked patterns first, then expired, then — when ``accepted_tags`` is set — Invalid for
    anything it does not match; otherwise Accepted."""
    if matches(id_tag, options.blocked_tags):
        return "Blocked"
    if matches(id_tag, options.expired_tags):
        return "Expired"
    if options.accepted_tags and not matches(id_tag, options.accepted_tags):
        return "Invalid"
    return "Accepted"


def admission_status(
    options: CsmsOptions, identity: str, authorization: bytes | None, *,
    passwords: Mapping[str, str] | None = None,
) -> int | None:
    """The HTTP status that refuses a handshake, or ``None`` to accept it.

    404 when ``identity`` is empty or not in ``allowed_chargers``; 401 when ``passwords`` is set and
    ``authorization`` (the raw ``Authorization`` header value, ``None`` if absent) is not
    ``Basic base64(identity:key)`` with the key configured for that identity. Keys are compared in
    constant time. ``passwords`` replaces ``options.passwords`` (the keys as the CSMS last set
    them).
    """
    if not identity or not matches(identity, options.allowed_chargers):
        return HTTP_NOT_FOUND
    keys = options.passwords if passwords is None else passwords
    if not keys:
        return None
    expected = keys.get(identity)
    credentials = parse_basic_auth(authorization)
    if expected is None or credentials is None:
        return HTTP_UNAUTHORIZED
    user, key = credentials
    user_ok = hmac.compare_digest(user.encode(), identity.encode())
    key_ok = hmac.compare_digest(key.encode(), expected.encode())
    return None if user_ok and key_ok else HTTP_UNAUTHORIZED


def parse_basic_auth(header: bytes | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic ...`` header value, or ``None`` when it
    is absent, not Basic, or not valid base64 of UTF-8 ``user:password``."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = text.partition(":")
    return (user, password) if colon else None


class Reading:
    """What :func:`energy_reading` found in one MeterValue: the register in Wh (``None`` when the
    MeterValue has none) and the raw text of any value that was not a finite decimal."""

    __slots__ = ("bad_values", "wh")

    def __init__(self, wh: int | None, bad_values: Sequence[str]) -> None:
        self.wh = wh
        self.bad_values = bad_values


def energy_reading(sampled_values: Iterable[object]) -> Reading:
    """The Energy.Active.Import.Register reading (Wh, rounded) among ``sampled_values``.

    Only a total (no ``phase``), in ``Wh`` or ``kWh`` (``Wh`` when omitted), in ``Raw`` format
    counts; the measurand defaults to the register when omitted, as the spec says. Values of other
    measurands are only checked for being decimals. The first register value wins.
    """
    wh: int | None = None
    bad: list[str] = []
    for sv in sampled_values:
        text = getattr(sv, "value", "")
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            bad.append(text)
            continue
        measurand = getattr(sv, "measurand", None) or ENERGY_REGISTER
        if wh is not None or measurand != ENERGY_REGISTER or getattr(sv, "phase", None):
            continue
        if (getattr(sv, "format", None) or "Raw") != "Raw":
            continue
        unit = getattr(sv, "unit", None) or "Wh"
        if unit == "kWh":
            number *= 1000
        elif unit != "Wh":
            continue
        wh = round(number)
    return Reading(wh, bad)


def timestamp_anomalies(
    timestamp: datetime, wall_now: datetime, max_skew: float
) -> list[AnomalyKind]:
    """What is odd about a charge point's ``timestamp`` given the CSMS's ``wall_now`` (aware UTC):
    no UTC offset, before 2000, or more than ``max_skew`` seconds in the future. A timestamp
    without a zone is read as UTC for the other two checks."""
    found: list[AnomalyKind] = []
    if timestamp.tzinfo is None:
        found.append(AnomalyKind.TIMESTAMP_WITHOUT_ZONE)
        timestamp = timestamp.replace(tzinfo=UTC)
    if timestamp < ANCIENT:
        found.append(AnomalyKind.TIMESTAMP_ANCIENT)
    elif timestamp > wall_now + timedelta(seconds=max_skew):
        found.append(AnomalyKind.TIMESTAMP_IN_FUTURE)
    return found
