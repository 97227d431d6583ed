"""The records a report is made of: frozen msgspec Structs, which :func:`render_json` encodes as
they are. Field names carry their unit: ``_ms`` milliseconds, ``_s`` seconds, ``_kwh``
kilowatt-hours; counts have none.

Everything is seen from the simulated chargers' side: "received" means sent by the central
system to a charger, "sent" means sent by a charger.
"""

from __future__ import annotations

import msgspec


class ActionStats(msgspec.Struct, frozen=True, kw_only=True):
    """One OCPP action, from the chargers' side.

    ``calls_sent``: CALLs the chargers sent; ``calls_received``: CALLs the central system sent.
    ``results``: answers (CALLRESULT or CALLERROR) to the chargers' CALLs, each with a latency.
    ``errors_received``: CALLERRORs among those answers; ``errors_sent``: CALLERRORs the
    chargers answered the central system's CALLs with. ``timeouts``: chargers' CALLs left
    unanswered. ``p50_ms`` / ``p95_ms`` / ``p99_ms`` / ``max_ms``: latency in milliseconds over
    ``results`` (linear interpolation between closest ranks, rounded to the microsecond);
    ``None`` without results. Under virtual time they are read on the virtual clock, which
    jumps while every task waits: only simulated delays (latency faults, late answers) show.
    """

    action: str
    calls_sent: int = 0
    calls_received: int = 0
    results: int = 0
    errors_received: int = 0
    errors_sent: int = 0
    timeouts: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


class TransactionStats(msgspec.Struct, frozen=True, kw_only=True):
    """Transactions: ``started`` locally, ``acknowledged`` by the central system (a
    StartTransaction answer; ``accepted`` of those with idTag status Accepted), ``stopped``
    locally, and ``open`` (started, never stopped)."""

    started: int
    acknowledged: int
    accepted: int
    stopped: int
    open: int


class ConnectionStats(msgspec.Struct, frozen=True, kw_only=True):
    """Connections: every ``connects``, ``reconnects`` (connects of a charger that had connected
    before in this run), ``disconnects``, failed attempts (``connect_failures``) and the number
    of distinct ``chargers`` that connected at least once."""

    connects: int
    reconnects: int
    disconnects: int
    connect_failures: int
    chargers: int


class Outcomes(msgspec.Struct, frozen=True, kw_only=True):
    """What the central system answered, status by count (sorted by status): ``boot``, the
    BootNotification statuses (Accepted, Pending, Rejected); ``authorize`` and
    ``start_transaction``, the ``idTagInfo.status`` of Authorize and StartTransaction answers
    (Accepted, Blocked, Invalid, Expired, ConcurrentTx)."""

    boot: dict[str, int]
    authorize: dict[str, int]
    start_transaction: dict[str, int]


class Energy(msgspec.Struct, frozen=True, kw_only=True):
    """Energy delivered by the transactions stopped in the run (meterStop - meterStart, whichever
    run started them), in kWh: ``total_kwh`` and ``by_group_kwh`` (by the fleet's group names,
    sorted; chargers the run's fleet file does not name count under ``(unknown)``). A
    transaction still running at the end is not counted: its meterStop is not known."""

    total_kwh: float
    by_group_kwh: dict[str, float]
    transactions: int


class ResumeStats(msgspec.Struct, frozen=True, kw_only=True):
    """A ``--resume`` run (``resumed_from`` is the earlier run): ``restored``, the transaction
    messages it took over from that run's outbox; ``delivered`` of those, the ones that left the
    outbox in this run (answered, or dropped after their attempts: ``messages_dropped`` counts
    those); ``None`` both when the earlier run's outbox was not recorded per charger (a ledger
    of an older version). ``powerloss_stops``: transactions the earlier run left running that
    this run stopped with reason PowerLoss."""

    resumed_from: int
    restored: int | None
    delivered: int | None
    powerloss_stops: int


Scalar = str | int | float | bool
"""An expectation's parameter as written in the fleet file."""


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one ``[[expect]]`` table: ``number`` is its place in the file (1-based),
    ``check`` and ``params`` as written, ``passed``, and ``measured``, one line saying what was
    found (with the numbers that decided it)."""

    number: int
    check: str
    params: dict[str, Scalar]
    passed: bool
    measured: str


class FaultEffect(msgspec.Struct, frozen=True, kw_only=True):
    """One injected fault and what the central system did next for its charger. Times are
    seconds since the run's start: ``t_s`` the injection, ``until_s`` the fault's end (``None``:
    it acts once, or its end cannot be read back). ``first_reply`` is what the central system
    answered to the first frame the fault broke (a protocol fault: by message id), else the
    first frame the charger received after the injection (``"CALLRESULT Heartbeat"``,
    ``"CALLERROR NotImplemented"``, ``"CALL Reset"``); ``first_reply_after_s`` how long after
    that broken frame, else after the injection. ``errors`` the CALLERRORs the charger received
    from the injection to the next fault injected into it (or the run's end), or up to the
    answer to the broken frame if that came later. ``disconnected``: the fault took the
    charger's connection down; ``recovered_after_s`` is then the time from the fault's end
    (``until_s``, else ``t_s``) to the charger being connected again with its boot Accepted (0
    when it was back before the fault ended; ``None``: it was not back by the run's end)."""

    fault: str
    charger: str | None
    connector: int | None
    injection: str | None
    deliberate: bool
    t_s: float
    until_s: float | None
    first_reply: str | None
    first_reply_after_s: float | None
    errors: int
    disconnected: bool
    recovered_after_s: float | None


class ProfileAction(msgspec.Struct, frozen=True, kw_only=True):
    """One central-system-to-charge-point action in a run: ``calls``, the CALLs the central
    system sent; how the chargers answered them: ``statuses``, their CALLRESULTs by ``status``
    (``"(no status)"`` for a result without one), sorted; ``call_errors``, their CALLERRORs by
    code (sorted, unreadable codes last); ``unanswered``, calls with no answer recorded (the
    charger went down first); ``unsent``, answers given but never written (the connection
    ended first), counted in ``statuses`` / ``call_errors`` too."""

    action: str
    calls: int
    statuses: dict[str, int]
    call_errors: dict[str, int]
    unanswered: int = 0
    unsent: int = 0


class ProfileUsage(msgspec.Struct, frozen=True, kw_only=True):
    """One feature profile (``Core`` ... ``Security``, or ``"(unknown)"`` for calls of an
    action that is not a CS→CP action): ``calls`` the central system made of its actions in
    the run, and ``actions``, those it used, by name."""

    profile: str
    calls: int
    actions: tuple[ProfileAction, ...]


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """The summary of one run (see the module docstring for units and the point of view).

    ``duration_s`` is from the run's start to its recorded end, or to its last event when no
    end was recorded (a killed or still running run: ``ended_at`` is then ``None``);
    ``last_event_s`` is when its last event happened, in seconds since its start (``None``:
    no event).
    ``configured_duration_s`` is the fleet file's ``run.duration`` (``None``: until Ctrl-C, or
    the config is not readable); ``overrun_s`` how long the run went on after it (its graceful
    end: transactions stopped, queued messages given their grace period), ``None`` when it did
    not. ``time`` is ``"real"`` or ``"virtual"`` (``None``: the config is not readable).
    ``reasons`` are the run's failure reasons, as ``sim start`` printed them.
    ``call_errors_received`` / ``call_errors_sent`` map each OCPP-J error code to a count
    (sorted by code, unreadable codes last). ``actions`` are sorted by name, unknown last.
    ``faults`` maps each injected fault to a count. ``loop_lagged_s``: seconds in which the
    simulator's own event loop ran late (the periods of its
    :class:`~simulator.events.LoopLagged` events), the worst by ``loop_lag_max_ms`` (``None``
    when it never did): latencies measured then include the simulator's own delay.
    ``loop_lag_measured`` is false when the run had no probe (virtual time, a run that ended
    without its summary, or a ledger written before the probe existed).
    ``verdicts`` are the run's ``[[expect]]`` outcomes as stored when it ended (``None``: none
    were stored, e.g. a killed run); ``fault_effects`` pair each injected fault with what the
    central system did next, in injection order.
    ``messages_queued``: transaction messages the run left undelivered in its outbox (never
    dropped, never answered: a ``--resume`` run sends them), per action in ``queued_by_action``
    and per charger in ``queued_by_charger`` (``{}`` when not recorded per charger); ``None``
    when it is not known (an earlier run that ended before the ledger recorded it). For a run
    still going, what is queued now. ``resume`` is set for a ``--resume`` run; ``resumed_by`` is
    the first later run that resumed this one (and took its queue over), if any.
    ``profiles`` lists, per feature profile, the CS→CP actions the central system used and
    how the chargers answered (:class:`ProfileUsage`), every profile in the spec's order.
    """

    path: str
    run_id: int
    name: str
    seed: int | None
    config_sha256: str | None
    version: str | None
    status: str
    exit_code: int | None
    reasons: tuple[str, ...]
    started_at: str
    ended_at: str | None
    duration_s: float
    last_event_s: float | None
    configured_duration_s: float | None
    overrun_s: float | None
    time: str | None
    resumed_from: int | None
    resume: ResumeStats | None
    resumed_by: int | None
    events: int
    frames_in: int
    frames_out: int
    frames_in_with_violations: int
    actions: tuple[ActionStats, ...]
    call_errors_received: dict[str, int]
    call_errors_sent: dict[str, int]
    timeouts: int
    unmatched_results: int
    messages_dropped: int
    messages_queued: int | None
    queued_by_action: dict[str, int]
    queued_by_charger: dict[str, int]
    transactions: TransactionStats
    outcomes: Outcomes
    energy: Energy
    connections: ConnectionStats
    crashes: int
    faults: dict[str, int]
    csms_violations: int
    loop_lagged_s: float = 0.0
    loop_lag_max_ms: float | None = None
    loop_lag_measured: bool = False
    verdicts: tuple[Verdict, ...] | None = None
    fault_effects: tuple[FaultEffect, ...] = ()
    profiles: tuple[ProfileUsage, ...] = ()


class ChargerTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """One transaction of a charger that started in the run: ``t_start_s`` / ``t_stop_s`` are
    seconds since the run's start (``None`` while running; a stop may come in the run that
    resumed this one), ``ack_status`` the central system's idTagInfo status, ``energy_kwh``
    (meterStop - meterStart) once stopped."""

    local_id: int
    connector: int | None
    id_tag: str | None
    transaction_id: int | str | None
    ack_status: str | None
    t_start_s: float
    t_stop_s: float | None
    stop_reason: str | None
    energy_kwh: float | None


class ConnectorStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A connector's last StatusNotification status in the run (connector 0 is the charger),
    its error code and when (seconds since the run's start)."""

    connector: int
    status: str
    error_code: str
    t_s: float


class ChargerReport(msgspec.Struct, frozen=True, kw_only=True):
    """One charger in one run (``sim report --charger``): ``connections`` (``chargers`` is 1
    when it connected), ``connect_errors`` (each failed attempt's error, by count), the boot
    answers, ``transactions`` it started, the CALLERRORs it received and sent by code,
    ``timeouts``, ``crashes`` (their errors, by count), messages dropped and still queued,
    the last status per connector, and the central system's calls to it by feature profile."""

    path: str
    run_id: int
    charger: str
    group: str | None
    connections: ConnectionStats
    connect_errors: dict[str, int]
    boot: dict[str, int]
    transactions: tuple[ChargerTransaction, ...]
    energy_kwh: float
    call_errors_received: dict[str, int]
    call_errors_sent: dict[str, int]
    timeouts: int
    crashes: dict[str, int]
    messages_dropped: int
    messages_queued: int | None
    connectors: tuple[ConnectorStatus, ...]
    profiles: tuple[ProfileUsage, ...] = ()
