"""A hostile central system's frames, drawn from a seeded ``random.Random``.

:class:`HostileFrames` makes every kind of frame issue 14 lists (malformed JSON, wrong message
types and ids, schema-breaking results, CALLERROR for everything, rejected boots, 16 MB frames,
odd transaction ids, binary frames, out-of-range configuration values, long action names), and
CALLs of every central-system action with schema-valid but hostile payloads (built from the
official 1.6 schemas by :func:`instance`) or broken ones (the one-place breakages of
``tests.ocpp.test_schemas_invalid``). Each frame says what the charger owes it (:class:`Expect`),
worked out here from OCPP-J and the schemas, never by asking the simulator's own decoder:

- a CALL whose id can be read gets exactly one answer: a CALLRESULT (valid against the action's
  response schema) when its payload is valid for an action the charger implements, otherwise the
  CALLERROR OCPP-J names (unknown action NotImplemented; an action of another profile or one only
  charge points send NotSupported; a broken payload the breakage's code; a broken envelope
  FormationViolation or TypeConstraintViolation);
- anything else (a result, an error, a frame whose type or id cannot be read) gets no answer.
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
from collections.abc import Collection, Mapping
from typing import Any, Final, Literal

from simulator.machines.charger import SUPPORTED_PROFILES
from simulator.machines.configuration import KEYS
from simulator.ocpp.frames import ErrorCode
from simulator.ocpp.v16 import ACTIONS, Direction
from tests.ocpp.test_schemas_invalid import CASES
from tests.oracle import ORACLE, Kind

FORM: Final = ErrorCode.FORMATION_VIOLATION.value
TYPE: Final = ErrorCode.TYPE_CONSTRAINT_VIOLATION.value
NOT_IMPLEMENTED: Final = ErrorCode.NOT_IMPLEMENTED.value
NOT_SUPPORTED: Final = ErrorCode.NOT_SUPPORTED.value

CS_ACTIONS: Final = tuple(sorted(a for a, s in ACTIONS.items()
                                 if s.direction != Direction.CP_TO_CS))
"""Every action a central system may send (DataTransfer goes both ways)."""
CP_ONLY_ACTIONS: Final = tuple(sorted(a for a, s in ACTIONS.items()
                                      if s.direction == Direction.CP_TO_CS))
IMPLEMENTED: Final = frozenset(a for a in CS_ACTIONS if ACTIONS[a].profile in SUPPORTED_PROFILES)

SIXTEEN_MB: Final = 16 * 1024 * 1024

INTEGERS: Final = (0, 1, 2, 3, -1, 7, 60, 300, 86_400, 604_800, 604_801, 2**31 - 1, 2**31,
                   -(2**31), 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**20, -(10**20), 10**500,
                   -(10**500))
"""Integers a schema without bounds allows: the small ones, and every edge a charger may trip
on (int32, float precision, int64, uint64, hundreds of digits)."""
NUMBERS: Final = (0, 0.1, 1.5, 16, 32.5, -3.2, 1e6, 1e15, 1e300)
"""Numbers that are multiples of 0.1 (the schemas' limits), some far out of any real range."""
DATE_TIMES: Final = ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456789Z",
                     "2026-01-01T00:00:00+14:00", "2025-12-31T23:59:59-12:00",
                     "1970-01-01T00:00:00Z", "2038-01-19T03:14:08Z", "2026-01-01t00:00:00z",
                     "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
                     "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00")
"""RFC 3339 date-times the schemas allow, from the first instant to the last of the calendar."""
CHARACTERS: Final = string.ascii_letters + string.digits + " \"\\/{}[],:\x00\x1f\x7féß€😀\u2028"
"""What strings are made of: JSON's own punctuation, control characters, non-ASCII, emoji."""
ODD_IDS: Final = ("", " ", "\x00", "😀" * 36, "é" * 36, "null", "0", "[2]", "a\nb", "x" * 36)
"""Message ids that are strings of at most 36 characters, however odd."""
ERROR_CODES: Final = (*(code.value for code in ErrorCode), "FormatViolation",
                      "RpcFrameworkError", "", "x" * 1000, "😀")
"""CALLERROR codes a central system may send: the 1.6 ones, 2.0's, nonsense."""
GARBAGE: Final = ("", " ", "null", "true", "42", '"text"', "{}", "[]", "[", "]", "[2,",
                  '[2,"a","Reset",{"type":"Hard"}', "{'a': 1}", "[2,'a','Reset',{}]", "\x00",
                  "[NaN]", "[Infinity]", "[2,\"a\",\"Reset\",{\"type\":\"Hard\"}]]", "\ud800",
                  "[2,\"a\"\x00,\"Reset\",{}]", "\ufeff[2,\"a\",\"Heartbeat\",{}]")
"""Text that is no JSON array of the OCPP-J shape, with no message id the charger can read."""
GARBAGE_BYTES: Final = (b"\xff\xfe", b"\xc3\x28", b"\x80" * 10, b"[3,\"\xed\xa0\x80\",{}]")
"""Bytes that are no UTF-8 (a lone surrogate in CESU-8 the last)."""

MOODS: Final = ("mixed", "callerror", "schema_breaking", "rejecting", "silent")
"""How the hostile CS answers the charger's CALLs: right or hostile answers, mixed; a CALLERROR
for everything; a result that breaks the schema for everything; every boot Rejected or Pending
(the rest mixed); never."""


@dataclasses.dataclass(frozen=True, slots=True)
class Expect:
    """What the charger owes a frame: ``none`` (no answer), ``result`` (a CALLRESULT),
    ``error`` (a CALLERROR with ``code``; any 1.6 code when ``code`` is None)."""

    answer: Literal["none", "result", "error"]
    code: str | None = None


NO_ANSWER: Final = Expect("none")
RESULT: Final = Expect("result")


@dataclasses.dataclass(frozen=True, slots=True)
class Hostile:
    """One frame of the hostile CS: its text (or bytes, as a binary frame carries it), the id of
    the CALL it makes (None when it makes none the charger can read), the action it names,
    what the charger owes it, and its kind (for the tally)."""

    kind: str
    data: str | bytes
    unique_id: str | None
    action: str | None
    expect: Expect


def call_expectation(action: str, payload_ok: bool, code: str | None = None, *,
                     profiles: Collection[str] = SUPPORTED_PROFILES) -> Expect:
    """What a CALL of ``action`` gets from a charger implementing ``profiles``: ``payload_ok``
    says its payload is valid for the action's schema, ``code`` is the breakage's code when it
    is not."""
    spec = ACTIONS.get(action)
    if spec is None:
        return Expect("error", NOT_IMPLEMENTED)
    if spec.direction == Direction.CP_TO_CS or spec.profile not in profiles:
        return Expect("error", NOT_SUPPORTED)
    if not payload_ok:
        return Expect("error", code)
    return RESULT


# --- schema-valid values ------------------------------------------------------------------------


def text(rng: random.Random, max_length: int | None) -> str:
    """A random string of at most ``max_length`` characters (at most 2,000 when unbounded)."""
    top = 2_000 if max_length is None else max_length
    length = rng.choice((0, 1, top, rng.randint(0, min(top, 40))))
    return "".join(rng.choices(CHARACTERS, k=length))


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def instance(node: Mapping[str, Any], root: Mapping[str, Any], rng: random.Random) -> Any:
    """A random value valid for the schema ``node`` of ``root``, with hostile picks: every
    optional property half the time, integers from :data:`INTEGERS`, strings up to their
    ``maxLength``, date-times from :data:`DATE_TIMES`."""
    node = _resolve(node, root)
    if "enum" in node:
        return rng.choice(node["enum"])
    match node.get("type"):
        case "object":
            required = set(node.get("required", ()))
            properties = node.get("properties", {})  # ({} for an empty result)
            return {name: instance(sub, root, rng) for name, sub in properties.items()
                    if name in required or rng.random() < 0.5}
        case "array":
            count = rng.randint(max(1, int(node.get("minItems", 0))), 3)
            return [instance(node["items"], root, rng) for _ in range(count)]
        case "string" if node.get("format") == "date-time":
            return rng.choice(DATE_TIMES)
        case "string" if node.get("format") == "uri":
            return rng.choice(("ftp://files.example.com/x", "https://a.b/" + "c" * 400, "x:y"))
        case "string":
            limit = node.get("maxLength")
            return text(rng, None if limit is None else int(limit))
        case "integer":
            return rng.choice(INTEGERS) if rng.random() < 0.5 else rng.randint(-3, 5)
        case "number":
            return rng.choice(NUMBERS)
        case "boolean":
            return rng.random() < 0.5
    raise AssertionError(f"schema node the generator does not know: {node}")


def payload(action: str, kind: Kind, rng: random.Random) -> dict[str, Any]:
    """A random payload valid for ``<action>[Response].json``."""
    root = ORACLE.schema(action, kind)
    value: dict[str, Any] = instance(root, root, rng)
    return value


def _quoted(text: str) -> str:
    """``text`` as a JSON string."""
    return json.dumps(text, ensure_ascii=False)


def encode(frame: list[Any]) -> str:
    """A frame as JSON text, non-ASCII as it is (so a 36-character id stays 36 characters)."""
    return json.dumps(frame, ensure_ascii=False)


# --- the hostile central system ------------------------------------------------------------------


class HostileFrames:
    """Frames of a hostile CS, from ``rng``; CALL ids are fresh unless a kind reuses them.

    Each public method makes one kind; :meth:`any_call` picks a kind of CALL at random.
    """

    def __init__(self, rng: random.Random, mood: str = "mixed",
                 profiles: Collection[str] = SUPPORTED_PROFILES) -> None:
        self.rng = rng
        self.mood = mood
        """How the charger's CALLs are answered: one of :data:`MOODS`."""
        self.profiles = frozenset(profiles)
        """The feature profiles of the charger under test (the others answer NotSupported)."""
        self._count = 0
        self.past_ids: list[str] = []

    def new_id(self) -> str:
        """A fresh CALL id: usually ``cs-N``, sometimes an odd one made unique."""
        self._count += 1
        if self.rng.random() < 0.1:
            odd = self.rng.choice(ODD_IDS)
            suffix = str(self._count)
            return odd[: 36 - len(suffix)] + suffix
        return f"cs-{self._count}"

    def _call(self, kind: str, action: str, body: Any, expect: Expect,
              unique_id: str | None = None) -> Hostile:
        uid = self.new_id() if unique_id is None else unique_id
        self.past_ids.append(uid)
        return Hostile(kind, encode([2, uid, action, body]), uid, action, expect)

    # --- CALLs ----------------------------------------------------------------------------------

    def valid_call(self, action: str | None = None) -> Hostile:
        """A CALL of a CS action with a schema-valid, hostile payload."""
        action = action or self.rng.choice(CS_ACTIONS)
        return self._call("valid_call", action, payload(action, "request", self.rng),
                          call_expectation(action, True, profiles=self.profiles))

    def broken_call(self) -> Hostile:
        """A CALL of a CS action with its payload broken in one place."""
        action = self.rng.choice(CS_ACTIONS)
        by_breakage = CASES[(action, "request")]
        breakage = self.rng.choice(sorted(by_breakage))
        _, body, code = self.rng.choice(by_breakage[breakage])
        # A payload that is no object breaks the envelope: refused before the action is looked at.
        expect = call_expectation(action, False, code, profiles=self.profiles) \
            if isinstance(body, dict) else Expect("error", FORM)
        return self._call("broken_call", action, body, expect)

    def unknown_action(self) -> Hostile:
        """A CALL of an action no 1.6 peer knows: long, empty, misspelt, non-ASCII."""
        action = self.rng.choice(("", " ", "reset", "Reset ", "SetDisplayMessage", "A" * 1000,
                                  "x" * 100_000, "Réinitialiser", "😀", "\x00Reset",
                                  text(self.rng, 300)))
        if action in ACTIONS:  # (a random text could spell one)
            action += "?"
        return self._call("unknown_action", action, {}, Expect("error", NOT_IMPLEMENTED))

    def charge_point_action(self) -> Hostile:
        """A CALL of an action only charge points send, with a valid payload."""
        action = self.rng.choice(CP_ONLY_ACTIONS)
        return self._call("charge_point_action", action, payload(action, "request", self.rng),
                          Expect("error", NOT_SUPPORTED))

    def configuration(self) -> Hostile:
        """ChangeConfiguration of a known (or unknown) key to a hostile value."""
        rng = self.rng
        key = rng.choice((*KEYS, "UnknownKey", "heartbeatinterval", "", "K" * 50, "K" * 51))
        value = rng.choice((
            "", " ", "0", "-1", "1", "60", "86400", "86401", "604800", "604801", "2147483648",
            "99999999999999999999", "9" * 500, "9" * 501, "1" * 4_301, "1e3", "0x10",
            "\uff11\uff12",
            "60.5", " 60 ", "+60", "true", "FALSE", "yes", "Energy.Active.Import.Register," * 30,
            "Current.Import,Voltage", "Power.Active.Import,,", "0,1", "RST", "NotApplicable",
            "0.RST,1.RST", "aa" * 20, "00" * 41, text(rng, 500),
        ))
        ok = len(key) <= 50 and len(value) <= 500
        return self._call("configuration", "ChangeConfiguration", {"key": key, "value": value},
                          RESULT if ok else Expect("error", TYPE))

    def bad_envelope(self) -> Hostile:
        """A CALL-like frame with a broken envelope but a readable id (answered), or an
        unreadable type or id (not answered)."""
        rng = self.rng
        uid = self.new_id()
        body = {"type": "Soft"}
        shapes: tuple[tuple[list[Any], Expect], ...] = (
            ([2, uid, "Reset", body, {}], Expect("error", FORM)),
            ([2, uid, "Reset"], Expect("error", FORM)),
            ([2, uid], Expect("error", FORM)),
            ([2, uid, 42, body], Expect("error", TYPE)),
            ([2, uid, None, body], Expect("error", TYPE)),
            ([2, uid, "Reset", []], Expect("error", FORM)),
            ([2, uid, "Reset", "{}"], Expect("error", FORM)),
            ([2, uid, "Reset", None], Expect("error", FORM)),
            ([2, "i" * rng.randint(37, 300), "Reset", body], Expect("error", TYPE)),
            ([2, 17, "Reset", body], NO_ANSWER),
            ([2, None, "Reset", body], NO_ANSWER),
            ([2, [uid], "Reset", body], NO_ANSWER),
            ([2], NO_ANSWER),
            (["2", uid, "Reset", body], NO_ANSWER),
            ([2.0, uid, "Reset", body], NO_ANSWER),
            ([True, uid, "Reset", body], NO_ANSWER),
            ([rng.choice((0, 1, 5, -2, 2**64)), uid, "Reset", body], NO_ANSWER),
            ([{"2": uid}], NO_ANSWER),
        )
        frame, expect = rng.choice(shapes)
        readable = expect.answer != "none"
        answered = frame[1] if readable else None
        if readable and len(frame[1]) <= 36:
            self.past_ids.append(frame[1])
        return Hostile("bad_envelope", encode(frame), answered, "Reset", expect)

    def odd_id_call(self) -> Hostile:
        """A ClearCache (valid, harmless to repeat) whose id is odd, or one used before."""
        rng = self.rng
        if self.past_ids and rng.random() < 0.5:
            uid = rng.choice(self.past_ids)
        else:
            uid = rng.choice(ODD_IDS)
        return self._call("odd_id", "ClearCache", {}, RESULT, unique_id=uid)

    def deep(self) -> Hostile:
        """A CALL nested ten thousand levels deep (valid JSON, too deep to decode): its id is
        still read, and the CALL answered FormationViolation."""
        uid = self.new_id()
        depth = 10_000
        body = '{"type":"Soft","a":' + '{"a":' * depth + "1" + "}" * depth + "}"
        return Hostile("deep", f'[2,{_quoted(uid)},"Reset",{body}]', uid, "Reset",
                       Expect("error", FORM))

    def huge_call(self) -> Hostile:
        """A 16 MB DataTransfer (its ``data`` has no length limit)."""
        uid = self.new_id()
        body = f'{{"vendorId":"v","data":"{"A" * SIXTEEN_MB}"}}'
        return Hostile("huge", f'[2,{_quoted(uid)},"DataTransfer",{body}]', uid,
                       "DataTransfer", RESULT)

    def huge_garbage(self) -> Hostile:
        """16 MB of text that is no JSON."""
        return Hostile("huge", "[" * SIXTEEN_MB, None, None, NO_ANSWER)

    def huge(self) -> Hostile:
        """A 16 MB frame: :meth:`huge_call` or :meth:`huge_garbage`."""
        return self.huge_call() if self.rng.random() < 0.5 else self.huge_garbage()

    def garbage(self) -> Hostile:
        """Text (or bytes) that is no OCPP-J frame and carries no readable id."""
        if self.rng.random() < 0.2:
            return Hostile("binary_garbage", self.rng.choice(GARBAGE_BYTES), None, None, NO_ANSWER)
        return Hostile("malformed", self.rng.choice(GARBAGE), None, None, NO_ANSWER)

    def not_utf8_call(self) -> Hostile:
        """A CALL as bytes with an invalid UTF-8 sequence in its payload, or in its id (the
        charger answers with the id as it reads it, U+FFFD for the broken byte): FormationViolation
        either way."""
        uid = self.new_id()
        if self.rng.random() < 0.5:
            data = b'[2,' + encode([uid]).encode()[1:-1] + b',"Reset",{"type":"So\xfft"}]'
            return Hostile("binary_call", data, uid, "Reset", Expect("error", FORM))
        data = b'[2,"a\xff","Reset",{}]'
        return Hostile("binary_call", data, "a\ufffd", "Reset", Expect("error", FORM))

    def binary(self, frame: Hostile) -> Hostile:
        """The same frame as a binary message (UTF-8 bytes)."""
        data = frame.data.encode(errors="surrogatepass") if isinstance(frame.data, str) \
            else frame.data
        return dataclasses.replace(frame, kind="binary_" + frame.kind, data=data)

    def any_call(self) -> Hostile:
        """A CALL or a broken frame of a kind picked at random (weights favour what reaches the
        charger's logic)."""
        rng = self.rng
        pick = rng.random()
        if pick < 0.30:
            frame = self.valid_call(rng.choice(sorted(IMPLEMENTED)))
        elif pick < 0.40:
            frame = self.valid_call()
        elif pick < 0.55:
            frame = self.broken_call()
        elif pick < 0.67:
            frame = self.configuration()
        elif pick < 0.74:
            frame = self.unknown_action()
        elif pick < 0.78:
            frame = self.charge_point_action()
        elif pick < 0.86:
            frame = self.bad_envelope()
        elif pick < 0.90:
            frame = self.odd_id_call()
        elif pick < 0.92:
            frame = self.not_utf8_call()
        else:
            frame = self.garbage()
        if rng.random() < 0.05 and isinstance(frame.data, str):
            frame = self.binary(frame)
        return frame

    # --- answers to the charger's CALLs ----------------------------------------------------------

    def answer(self, unique_id: str, action: str, request: Mapping[str, Any], now_iso: str,
               transaction_id: int) -> tuple[str, str] | None:
        """An answer to the charger's CALL ``unique_id`` of ``action`` as :attr:`mood` has it
        (None: no answer). Returns (kind, frame)."""
        match self.mood:
            case "silent":
                return None
            case "callerror":
                return self._callerror(unique_id)
            case "schema_breaking":
                return self._schema_breaking(unique_id, action)
            case "rejecting" if action == "BootNotification":
                return self._rejected_boot(unique_id, now_iso)
        rng = self.rng
        if action == "StartTransaction" and rng.random() < 0.3:
            odd = rng.choice(INTEGERS)
            return "odd_transaction_id", encode([3, unique_id, {
                "idTagInfo": {"status": "Accepted"}, "transactionId": odd}])
        pick = rng.random()
        if pick < 0.55:
            return "answer", encode([3, unique_id, proper(action, request, now_iso,
                                                          transaction_id)])
        if pick < 0.65:
            return "hostile_result", encode([3, unique_id, payload(action, "response", rng)])
        if action == "BootNotification" and pick < 0.80:
            return self._rejected_boot(unique_id, now_iso)
        if pick < 0.78:
            return self._schema_breaking(unique_id, action)
        if pick < 0.90:
            return self._callerror(unique_id)
        if pick < 0.93:
            return "bad_callerror", encode(rng.choice((
                [4, unique_id, "GenericError"], [4, unique_id, 5, "", {}],
                [4, unique_id, "GenericError", "", []], [4, unique_id, "GenericError", None, {}])))
        if pick < 0.97:
            other = rng.choice((*self.past_ids[-3:], "never-sent", "", "x" * 37))
            return "unmatched", encode([rng.choice((3, 4)), other, {}] if rng.random() < 0.5
                                       else [4, other, "GenericError", "", {}])
        return "wrong_type_answer", encode([rng.choice((5, 6, 1)), unique_id, {}])

    def _rejected_boot(self, unique_id: str, now_iso: str) -> tuple[str, str]:
        status = self.rng.choice(("Rejected", "Pending"))
        interval = self.rng.choice((0, 1, 30, 10**6, 10**500))
        return "rejected_boot", encode([3, unique_id, {"status": status, "currentTime": now_iso,
                                                       "interval": interval}])

    def _schema_breaking(self, unique_id: str, action: str) -> tuple[str, str]:
        by_breakage = CASES[(action, "response")]
        _, body, _ = self.rng.choice(by_breakage[self.rng.choice(sorted(by_breakage))])
        return "schema_breaking_result", encode([3, unique_id, body])

    def _callerror(self, unique_id: str) -> tuple[str, str]:
        details = self.rng.choice(({}, {"a": [1, {"b": None}]}, {"x": "y" * 1000}))
        return "callerror", encode([4, unique_id, self.rng.choice(ERROR_CODES),
                                    text(self.rng, 300), details])


def proper(action: str, request: Mapping[str, Any], now_iso: str,
           transaction_id: int) -> dict[str, Any]:
    """The answer a friendly CS gives to ``action``."""
    match action:
        case "BootNotification":
            return {"status": "Accepted", "currentTime": now_iso, "interval": 300}
        case "Heartbeat":
            return {"currentTime": now_iso}
        case "Authorize":
            return {"idTagInfo": {"status": "Accepted"}}
        case "StartTransaction":
            return {"idTagInfo": {"status": "Accepted"}, "transactionId": transaction_id}
        case "DataTransfer":
            return {"status": "Accepted"}
        case _:
            return {}
