"""The reports as readable plain text (``sim report``): latencies in milliseconds, durations in
seconds, energy in kWh. Names that came from outside (an action, an error code, a charger id)
take one short printable cell."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Final

from simulator.report.model import (
    ChargerReport,
    FaultEffect,
    ProfileAction,
    ProfileUsage,
    Report,
    Scalar,
    Verdict,
)

MAX_SHOWN: Final = 40
"""Characters of a name that came from outside (an action, an error code) the text report
shows; a longer one is cut with an ellipsis."""

MAX_CHARGERS_SHOWN: Final = 10
"""Chargers named in a line that lists them (the others are counted)."""

MAX_ACTIONS_SHOWN: Final = 12
"""Actions of one feature profile the text report lists (the most called; a profile has at most
nine, the unknown actions a hostile central system sends may be many)."""

MAX_FAULTS_SHOWN: Final = 10
"""Injected faults the text report lists one by one (every kind is summed up above them)."""

RESUME_HINT: Final = "`sim start --resume` on this ledger delivers them"


def _ms(milliseconds: float | None) -> str:
    return "-" if milliseconds is None else f"{milliseconds:.1f}"


def clip(text: str) -> str:
    """``text`` as one short printable cell: what a central system sends may be any length and
    hold control characters."""
    shown = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 1] + "…"


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{clip(code)} {n}" for code, n in counts.items()) if counts else "none"


def _queued(r: Report) -> str:
    if r.messages_queued is None:
        return "(not recorded)"
    if not r.messages_queued:
        return "0"
    return f"{r.messages_queued} ({_codes(r.queued_by_action)})"


def _undelivered(r: Report) -> list[str]:
    """What the run left in the outbox: how many, of which chargers, and what delivers them."""
    if not r.messages_queued:
        return []
    chargers = list(r.queued_by_charger.items())
    named = ", ".join(f"{clip(c)} {n}" for c, n in chargers[:MAX_CHARGERS_SHOWN])
    if len(chargers) > MAX_CHARGERS_SHOWN:
        named += f", and {len(chargers) - MAX_CHARGERS_SHOWN} more charger(s)"
    where = f" of {len(chargers)} charger(s): {named}" if chargers else ""
    then = (f"run {r.resumed_by} resumed this one and took them over" if r.resumed_by
            else RESUME_HINT)
    return [f"NOT DELIVERED: {r.messages_queued} transaction message(s) left in the outbox{where};"
            f" {then}"]


def _timing(r: Report) -> list[str]:
    if r.overrun_s is None or r.configured_duration_s is None:
        return []
    left = (f"{r.messages_queued} message(s) were still queued when the grace period ran out"
            if r.messages_queued else "nothing was left queued")
    last = "" if r.last_event_s is None else f"; last event at {r.last_event_s:.1f} s"
    return [f"  ran {r.overrun_s:.1f} s past its duration of {r.configured_duration_s:g} s:"
            f" from {r.configured_duration_s:g} s on it ended gracefully (transactions stopped,"
            f" queued messages given a grace period to be delivered, connections closed{last});"
            f" {left}"]


def _resume(r: Report) -> list[str]:
    if r.resume is None:
        return []
    s = r.resume
    if s.restored is None:
        taken = "queued messages taken over: not recorded"
    else:
        taken = (f"queued messages taken over {s.restored}, delivered {s.delivered}"
                 if s.delivered is not None else f"queued messages taken over {s.restored}")
    return [f"  resumed from run {s.resumed_from}: {taken}; transactions left running there"
            f" stopped with PowerLoss {s.powerloss_stops}"]


def _loop_lag_line(r: Report) -> str:
    if not r.loop_lag_measured:
        return "simulator event loop: not measured (virtual time, or no probe in this run)"
    if r.loop_lag_max_ms is None:
        return "simulator event loop: on time"
    return (f"simulator event loop: late in {r.loop_lagged_s:g} s of the run, by up to"
            f" {_ms(r.loop_lag_max_ms)} ms: latencies then include the simulator's own delay"
            " (the fleet asked for more than this process serves)")


def _table(r: Report) -> list[str]:
    virtual = r.time == "virtual"
    header = ("action", "sent", "recv", "results", "err in", "err out", "timeouts",
              "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = [
        (clip(a.action), str(a.calls_sent), str(a.calls_received), str(a.results),
         str(a.errors_received), str(a.errors_sent), str(a.timeouts),
         _ms(a.p50_ms), _ms(a.p95_ms), _ms(a.p99_ms), _ms(a.max_ms))
        for a in r.actions
    ]
    if not rows:
        return ["no frames recorded"]
    lines = []
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    if virtual:
        lines.append('latencies: on the virtual clock (run.time = "virtual"): only simulated delays'
                     " count (latency and bandwidth faults, late or slow answers); the time the"
                     " software itself takes is not in them")
    return lines


def _outcomes(r: Report) -> list[str]:
    o = r.outcomes
    lines = [f"boot: {_codes(o.boot)}"]
    if o.boot and "Accepted" not in o.boot:
        lines.append("  WARNING: the central system accepted no boot: no charger was let in")
    lines += [f"idTagInfo of Authorize: {_codes(o.authorize)}",
              f"idTagInfo of StartTransaction: {_codes(o.start_transaction)}"]
    groups = ", ".join(f"{clip(g)} {kwh:g}" for g, kwh in r.energy.by_group_kwh.items())
    lines.append(f"energy delivered: {r.energy.total_kwh:g} kWh by {r.energy.transactions}"
                 f" stopped transaction(s)" + (f" (by group, kWh: {groups})" if groups else ""))
    return lines


def _param(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else f"{value:g}"


def verdict_title(verdict: Verdict) -> str:
    """``#2 latency action="BootNotification" p95="2s"``: an expectation as the file wrote it."""
    params = "".join(f" {key}={_param(value)}" for key, value in verdict.params.items())
    return f"#{verdict.number} {clip(verdict.check)}{params}"


def verdict_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """The verdicts as lines: a count, then one per expectation (number, PASS or FAIL, the
    check with its parameters, what was measured)."""
    passed = sum(1 for v in verdicts if v.passed)
    lines = [f"verdicts: {passed} of {len(verdicts)} passed"]
    for v in verdicts:
        title = verdict_title(v).split(" ", 1)
        lines.append(f"  {title[0]} {'PASS' if v.passed else 'FAIL'}  {title[1]}: {v.measured}")
    return lines


def _verdicts(r: Report) -> list[str]:
    if r.verdicts is None:
        return []
    if not r.verdicts:
        return ["", "verdicts: none expected (no [[expect]] table)"]
    return ["", *verdict_lines(r.verdicts)]


def _seconds(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s median, {max(values):.1f} s at worst"


def _fault_kind(name: str, effects: list[FaultEffect]) -> str:
    replies = [e.first_reply_after_s for e in effects if e.first_reply_after_s is not None]
    down = [e for e in effects if e.disconnected]
    back = [e.recovered_after_s for e in down if e.recovered_after_s is not None]
    line = (f"  {clip(name)} {len(effects)}: answered {len(replies)}"
            + (f" (first frame {_seconds(replies)} after)" if replies else "")
            + f", CALLERRORs {sum(e.errors for e in effects)}")
    if down:
        line += f", disconnected {len(down)}, back {len(back)}"
        line += f" ({_seconds(back)} after the fault ended)" if back else ""
    return line


def _fault_line(e: FaultEffect) -> str:
    who = clip(e.charger) if e.charger else "(fleet)"
    reply = (f"first frame {clip(e.first_reply)} after {e.first_reply_after_s:.1f} s"
             if e.first_reply is not None and e.first_reply_after_s is not None
             else "no frame after it")
    line = f"  {e.t_s:.1f} s {clip(e.fault)} on {who}: {reply}, CALLERRORs {e.errors}"
    if e.disconnected:
        line += ("; disconnected, not back by the end" if e.recovered_after_s is None
                 else f"; disconnected, back {e.recovered_after_s:.1f} s after the fault ended")
    return line + (" (deliberate)" if e.deliberate else "")


def _faults(r: Report) -> list[str]:
    effects = r.fault_effects
    if not effects:
        return []
    by_name: dict[str, list[FaultEffect]] = {}
    for effect in effects:
        by_name.setdefault(effect.fault, []).append(effect)
    shown = "" if len(effects) <= MAX_FAULTS_SHOWN else f", the first {MAX_FAULTS_SHOWN} listed"
    return ["", f"faults and what the central system did next ({len(effects)} injected{shown}):",
            *(_fault_kind(name, group) for name, group in sorted(by_name.items())),
            *(_fault_line(e) for e in effects[:MAX_FAULTS_SHOWN])]


def _answers(a: ProfileAction) -> str:
    """How the chargers answered one action: statuses; CALLERRORs by code; what was missing."""
    groups = [
        ", ".join(f"{clip(status)} {n}" for status, n in a.statuses.items()),
        "CALLERROR " + ", ".join(f"{clip(code)} {n}" for code, n in a.call_errors.items())
        if a.call_errors else "",
        ", ".join(f"{label} {n}" for label, n in (("unanswered", a.unanswered),
                                                  ("answer unsent", a.unsent)) if n),
    ]
    return "; ".join(g for g in groups if g) or "none"


def _action_name(action: str) -> str:
    """An action's cell: a blank or padded name (what a hostile central system may send)
    quoted, so that it shows."""
    return clip(action) if action and action == action.strip() else clip(repr(action))


def profile_lines(profiles: Sequence[ProfileUsage]) -> list[str]:
    """The central system's calls by feature profile: each used profile with its actions (how
    many calls, how the chargers answered; at most :data:`MAX_ACTIONS_SHOWN` of a profile, the
    others counted), then the profiles it did not use on one line."""
    used = [p for p in profiles if p.calls]
    if not used:
        return ["central system's calls by feature profile: none"]
    lines = ["central system's calls by feature profile (CS→CP actions; how the chargers"
             " answered):"]
    for usage in used:
        lines.append(f"  {clip(usage.profile)}: {usage.calls} call(s)")
        shown = sorted(usage.actions, key=lambda a: -a.calls)[:MAX_ACTIONS_SHOWN]
        shown = [a for a in usage.actions if a in shown]
        width = max(len(_action_name(a.action)) for a in shown)
        lines += [f"    {_action_name(a.action).ljust(width)}  {a.calls:>4}  {_answers(a)}"
                  for a in shown]
        rest = [a for a in usage.actions if a not in shown]
        if rest:
            lines.append(f"    and {len(rest)} more action(s),"
                         f" {sum(a.calls for a in rest)} call(s)")
    unused = [clip(p.profile) for p in profiles if not p.calls]
    if unused:
        lines.append(f"  not used: {', '.join(unused)}")
    return lines


def render_text(report: Report) -> str:
    """``report`` as a readable plain-text page (latencies in milliseconds), no trailing
    newline."""
    r = report
    exit_code = "-" if r.exit_code is None else str(r.exit_code)
    lines = [
        f"Run {r.run_id} {r.name!r} in {r.path}: {r.status} (exit code {exit_code})",
        *(f"  reason: {reason}" for reason in r.reasons),
        f"  seed {r.seed}   config sha256 {r.config_sha256 or '-'}   version {r.version or '-'}",
        f"  started {r.started_at}   ended {r.ended_at or '- (no end recorded)'}"
        f"   duration {r.duration_s:.1f} s" + (" (virtual time)" if r.time == "virtual" else ""),
        *_timing(r),
        *_resume(r),
    ]
    if r.status == "running":
        lines.append("  the run has no end: it is still going, or its process was killed")
    lines += ["", *_table(r)]
    t, c = r.transactions, r.connections
    lines += [
        "",
        f"CALLERRORs received: {_codes(r.call_errors_received)}",
        f"CALLERRORs sent:     {_codes(r.call_errors_sent)}",
        f"timeouts {r.timeouts}   unmatched results {r.unmatched_results}"
        f"   messages dropped {r.messages_dropped}   still queued {_queued(r)}",
        *_undelivered(r),
        f"transactions: started {t.started}, acknowledged {t.acknowledged}"
        f" ({t.accepted} accepted), stopped {t.stopped}, open {t.open}",
        *_outcomes(r),
        f"connections: {c.chargers} chargers, connects {c.connects}, reconnects {c.reconnects},"
        f" disconnects {c.disconnects}, failed attempts {c.connect_failures}",
        f"crashes {r.crashes}",
        f"faults injected: {_codes(r.faults)}",
        f"frames: in {r.frames_in} ({r.frames_in_with_violations} with violations),"
        f" out {r.frames_out}; events {r.events}; CSMS-side violations {r.csms_violations}",
        _loop_lag_line(r),
        "",
        *profile_lines(r.profiles),
        *_faults(r),
        *_verdicts(r),
    ]
    return "\n".join(lines)


def render_charger_text(report: ChargerReport) -> str:
    """``report`` as a readable plain-text page (times in seconds since the run's start, energy
    in kWh), no trailing newline."""
    r, c = report, report.connections
    queued = "(not recorded)" if r.messages_queued is None else str(r.messages_queued)
    lines = [
        f"Charger {clip(r.charger)} in run {r.run_id} of {r.path}"
        + (f" (group {clip(r.group)})" if r.group else ""),
        f"connections: connects {c.connects}, reconnects {c.reconnects},"
        f" disconnects {c.disconnects}, failed attempts {c.connect_failures}"
        + (f" ({_codes(r.connect_errors)})" if r.connect_errors else ""),
        f"boot: {_codes(r.boot)}",
        f"CALLERRORs received: {_codes(r.call_errors_received)}",
        f"CALLERRORs sent:     {_codes(r.call_errors_sent)}",
        f"timeouts {r.timeouts}   crashes {sum(r.crashes.values())}"
        + (f" ({_codes(r.crashes)})" if r.crashes else "")
        + f"   messages dropped {r.messages_dropped}   still queued {queued}",
        f"transactions: {len(r.transactions)}, energy delivered {r.energy_kwh:g} kWh",
    ]
    for t in r.transactions:
        stop = ("running" if t.t_stop_s is None
                else f"stopped at {t.t_stop_s:.1f} s ({t.stop_reason or '-'})")
        energy = "-" if t.energy_kwh is None else f"{t.energy_kwh:g} kWh"
        lines.append(
            f"  #{t.local_id} connector {t.connector} tag {clip(t.id_tag or '-')}"
            f" id {t.transaction_id if t.transaction_id is not None else '-'}"
            f" {t.ack_status or 'unacknowledged'}: started at {t.t_start_s:.1f} s, {stop},"
            f" {energy}")
    lines.append("last status per connector:" + ("" if r.connectors else " none recorded"))
    lines += [f"  {s.connector}: {clip(s.status)}"
              + ("" if s.error_code == "NoError" else f" ({clip(s.error_code)})")
              + f" at {s.t_s:.1f} s" for s in r.connectors]
    lines += profile_lines(r.profiles)
    return "\n".join(lines)
