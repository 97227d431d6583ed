"""What ``sim csms`` prints as it serves: one line per connection, disconnection, refusal and
boot, and with ``verbose`` every frame. Pure: events in, text lines out, no I/O, no trio.

A line is ``HH:MM:SS.mmm  <charger>  <what>``, the time in UTC from the CSMS's wall clock
(``wall_epoch + event.t``). A boot line is written when the CSMS answers a BootNotification,
with the vendor and model the charger sent and the status it got. Frames (``verbose``) show as
``<- raw`` (received) and ``-> raw`` (sent), cut to :data:`MAX_FRAME_CHARS` characters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from simulator.events import CsmsFrameIn, CsmsFrameOut, CsmsNote, Event

MAX_FRAME_CHARS: Final = 500
"""A frame longer than this is cut, with ``…`` after the cut."""
BOOT: Final = "BootNotification"
CALL: Final = 2
CALL_RESULT: Final = 3


def _decode(raw: str) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None


def _printable(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


class CsmsConsole:
    """Turns the CSMS's events into lines. ``observe(event)`` returns the lines for one event
    (often none); it never raises, whatever the charger sent."""

    def __init__(self, *, wall_epoch: float, verbose: bool = False) -> None:
        self.wall_epoch = wall_epoch
        self.verbose = verbose
        self._boots: dict[str, str] = {}  # charger -> "vendor model" of its pending boot

    def observe(self, event: Event) -> list[str]:
        """The lines ``event`` gives (see the module docstring)."""
        lines: list[str] = []
        match event:
            case CsmsNote():
                line = self._note(event)
                if line is not None:
                    lines.append(self._line(event, line))
            case CsmsFrameIn():
                if self.verbose:
                    lines.append(self._line(event, f"<- {_printable(event.raw, MAX_FRAME_CHARS)}"))
                if event.action == BOOT:
                    self._remember_boot(event)
            case CsmsFrameOut():
                if self.verbose:
                    lines.append(self._line(event, f"-> {_printable(event.raw, MAX_FRAME_CHARS)}"))
                if event.action == BOOT:
                    boot = self._boot(event)
                    if boot is not None:
                        lines.append(self._line(event, boot))
        return lines

    def _line(self, event: Event, text: str) -> str:
        moment = datetime.fromtimestamp(self.wall_epoch + event.t, UTC)
        who = _printable(event.charger or "-", 40)
        return f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}  {who}  {text}"

    def _note(self, note: CsmsNote) -> str | None:
        data = note.data
        match note.what:
            case "connected":
                return f"connected (session {data.get('session')})"
            case "disconnected":
                stale = "" if data.get("current", True) else ", already replaced"
                return f"disconnected (session {data.get('session')}{stale})"
            case "replaced":
                return f"reconnected: session {data.get('old')} is replaced"
            case "rejected":
                reason = _printable(str(data.get("reason", "")), 120)
                return f"refused: HTTP {data.get('status')}, {reason}"
            case "internal_error":
                return f"internal error: {_printable(str(data.get('error', '')), 200)}"
            case _:
                return None  # anomalies are counted in the ledger; frames show them (--verbose)

    def _remember_boot(self, frame: CsmsFrameIn) -> None:
        decoded = _decode(frame.raw)
        if not (isinstance(decoded, list) and len(decoded) == 4 and decoded[0] == CALL
                and isinstance(decoded[3], dict)):
            return
        payload = decoded[3]
        who = " ".join(str(payload.get(key, "?")) for key in ("chargePointVendor",
                                                               "chargePointModel"))
        self._boots[frame.charger or ""] = _printable(who, 80)

    def _boot(self, frame: CsmsFrameOut) -> str | None:
        decoded = _decode(frame.raw)
        if not (isinstance(decoded, list) and len(decoded) == 3 and decoded[0] == CALL_RESULT
                and isinstance(decoded[2], dict)):
            return None  # a CALLERROR: the frame itself says why (--verbose)
        answer = decoded[2]
        who = self._boots.pop(frame.charger or "", "?")
        return (f"boot: {who}: {answer.get('status')} "
                f"(heartbeat interval {answer.get('interval')} s)")
