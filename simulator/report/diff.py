"""Two runs side by side (``sim diff A.db B.db``): their verdicts, latency percentiles per
action, and error counts, with every difference marked.

A row is marked with ``*`` when the runs differ on it: a verdict passed in one and failed in the
other (or exists in one only), a latency percentile moved by more than :data:`LATENCY_CHANGE`
of the larger value and more than :data:`LATENCY_FLOOR_MS`, a count is not the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from simulator.report.frames import PERCENTILES
from simulator.report.model import ActionStats, Report, Verdict
from simulator.report.text import clip

LATENCY_CHANGE: Final = 0.10
"""A percentile that moved by more than this share of the larger of the two is a difference."""

LATENCY_FLOOR_MS: Final = 1.0
"""A percentile that moved by less than this (ms) is never a difference (timer noise)."""

MEASURED_SHOWN: Final = 60
"""Characters of a verdict's measured line shown in its column (``sim report`` has it all)."""

MARK: Final = "*"


def _run(label: str, r: Report) -> str:
    return (f"{label} = run {r.run_id} {r.name!r} in {r.path}: {r.status}, seed {r.seed},"
            f" config sha256 {(r.config_sha256 or '-')[:16]}")


def _table(rows: Sequence[tuple[bool, Sequence[str]]], header: Sequence[str]) -> list[str]:
    """``rows`` (marked?, cells) under ``header``, columns aligned, a mark in front."""
    cells = [list(header), *(list(row) for _, row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    marks = [" ", *(MARK if marked else " " for marked, _ in rows)]
    return [(mark + " " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                          strict=True))).rstrip()
            for mark, row in zip(marks, cells, strict=True)]


def _verdict(v: Verdict | None) -> str:
    if v is None:
        return "-"
    measured = v.measured if len(v.measured) <= MEASURED_SHOWN \
        else v.measured[:MEASURED_SHOWN - 1] + "…"
    return f"{'PASS' if v.passed else 'FAIL'} {measured}"


def _verdicts(a: Report, b: Report) -> list[str]:
    if a.verdicts is None and b.verdicts is None:
        return ["verdicts: none stored in either run"]
    left = {v.number: v for v in a.verdicts or ()}
    right = {v.number: v for v in b.verdicts or ()}
    rows: list[tuple[bool, Sequence[str]]] = []
    for number in sorted(left.keys() | right.keys()):
        va, vb = left.get(number), right.get(number)
        check = (va or vb)
        assert check is not None
        differs = va is None or vb is None or va.passed != vb.passed or va.check != vb.check
        rows.append((differs, (f"#{number} {clip(check.check)}", _verdict(va), _verdict(vb))))
    if not rows:
        return ["verdicts: none expected in either run"]
    return ["verdicts:", *_table(rows, ("expectation", "A", "B"))]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _moved(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return (x is None) != (y is None)
    gap = abs(x - y)
    return gap > LATENCY_FLOOR_MS and gap > LATENCY_CHANGE * max(abs(x), abs(y))


def _percentiles(s: ActionStats | None) -> tuple[float | None, ...]:
    return (None, None, None) if s is None else (s.p50_ms, s.p95_ms, s.p99_ms)


def _latencies(a: Report, b: Report) -> list[str]:
    left = {s.action: s for s in a.actions}
    right = {s.action: s for s in b.actions}
    names = "/".join(f"p{p:g}" for p in PERCENTILES)
    rows: list[tuple[bool, Sequence[str]]] = []
    for action in sorted(left.keys() | right.keys()):
        pa, pb = _percentiles(left.get(action)), _percentiles(right.get(action))
        if all(v is None for v in (*pa, *pb)):
            continue
        differs = any(_moved(x, y) for x, y in zip(pa, pb, strict=True))
        rows.append((differs, (clip(action), "/".join(map(_ms, pa)), "/".join(map(_ms, pb)))))
    if not rows:
        return [f"latency per action ({names} ms): none measured in either run"]
    return [f"latency per action ({names} ms):", *_table(rows, ("action", "A", "B"))]


def _counts(a: Report, b: Report) -> list[str]:
    rows: list[tuple[bool, Sequence[str]]] = []

    def add(label: str, read: Callable[[Report], int | None]) -> None:
        x, y = read(a), read(b)
        rows.append((x != y, (label, "-" if x is None else str(x), "-" if y is None else str(y))))

    counted: tuple[tuple[str, Callable[[Report], dict[str, int]]], ...] = (
        ("received", lambda r: r.call_errors_received), ("sent", lambda r: r.call_errors_sent))
    for label, codes in counted:
        for code in sorted(codes(a).keys() | codes(b).keys()):
            x, y = codes(a).get(code, 0), codes(b).get(code, 0)
            rows.append((x != y, (f"CALLERRORs {label} {clip(code)}", str(x), str(y))))
    add("timeouts", lambda r: r.timeouts)
    add("unmatched results", lambda r: r.unmatched_results)
    add("messages dropped", lambda r: r.messages_dropped)
    add("frames received with violations", lambda r: r.frames_in_with_violations)
    add("crashes", lambda r: r.crashes)
    add("transactions open at the end", lambda r: r.transactions.open)
    return ["errors:", *_table(rows, ("count", "A", "B"))]


def render_diff(a: Report, b: Report) -> str:
    """Runs ``a`` and ``b`` side by side as plain text (no trailing newline); rows on which
    they differ start with :data:`MARK`."""
    sections = [
        [_run("A", a), _run("B", b), f"rows marked {MARK} differ"],
        _verdicts(a, b),
        _latencies(a, b),
        _counts(a, b),
    ]
    return "\n\n".join("\n".join(section) for section in sections)


def differs(text: str) -> bool:
    """Whether a :func:`render_diff` page marks any difference."""
    return any(line.startswith(MARK) for line in text.splitlines())
