"""A simulation report for people: a heading line, then one section per idea, each a
table of the tools' one renderer (contact_router_tools.tables) with what its columns
mean. SECTIONS lists every section `simulate` can print, in order; a section with
nothing to say this run is left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from contactrouter.v1 import contact_router_pb2 as pb

from contact_router_tools.proto_values import channel_name, optional, when
from contact_router_tools.simulation.figures import ChannelSummary
from contact_router_tools.simulation.report import SimulationReport, scaled
from contact_router_tools.tables import number, percent, render_table, seconds

INDENT = "  "

Body = tuple[str, list[str]]
"""What a section says this run: the words after its title, and its lines."""


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    body: Callable[[SimulationReport], Body | None]  # None: nothing to say this run


def _num(value: float) -> str:
    return f"{value:g}"


def _table(header: list[str], rows: list[list[object]]) -> str:
    return render_table((header, rows), INDENT)


def _client_row(s: ChannelSummary) -> list[object]:
    counts = [s.submitted, s.answered, s.abandoned, s.left_at_end, s.completed]
    figures = (s.asa, s.p90_wait, s.max_wait, s.talk, s.acw, s.aht)
    return [s.channel, *counts, percent(s.service_level), *map(seconds, figures)]


def contacts(report: SimulationReport) -> Body:
    header = ["channel", "submitted", "answered", "abandoned", "left", "completed", "SL"]
    header += ["ASA", "p90 wait", "max wait", "talk", "ACW", "AHT"]
    client = report.client
    warm_up = report.warm_up
    thresholds = ", ".join(f"{ch} {_num(t)} s" for ch, t in report.thresholds.items())
    taken = sum(c.taken for c in report.callbacks)
    became = (
        [
            f"{INDENT}{taken} of the submitted became callbacks (CALLBACKS below): here neither "
            "answered nor abandoned, nor in SL"
        ]
        if taken
        else []
    )
    return (
        "measured client side, simulated seconds; wait = submit acknowledged -> offer "
        "accepted" + (f"; arrivals of the first {_num(warm_up)} s left out" if warm_up else ""),
        [
            _table(header, [_client_row(s) for s in client]),
            *became,
            f"{INDENT}SL = answered within threshold / (answered + abandoned or left after "
            f"{_num(report.short_abandon_limit)} s); thresholds {thresholds}",
            f"{INDENT}abandoned = customer patience ran out; left = still unanswered when the "
            "run closed, abandoned by the simulator (the server counts both as abandoned)",
            f"{INDENT}talk, ACW, AHT leave out the {client[-1].cut_short} contact(s) ended "
            "early because the run closed (the server report includes them)",
        ],
    )


def agents(report: SimulationReport) -> Body:
    rows: list[list[object]] = [
        [a.agent_id, a.group, a.handled, percent(a.occupancy)] for a in report.agent_records
    ]
    return (
        "handled = contacts completed; occupancy = time holding an answered contact / time "
        "on shift",
        [_table(["agent", "group", "handled", "occupancy"], rows)],
    )


def fairness(report: SimulationReport) -> Body:
    rows: list[list[object]] = [
        [
            s.group,
            s.agents,
            number(s.mean, 1),
            s.minimum,
            s.maximum,
            number(s.stdev, 2),
            number(s.cv, 3),
        ]
        for s in report.spreads
    ]
    return (
        "contacts handled per agent within each group of equally skilled agents",
        [_table(["group", "agents", "mean", "min", "max", "stdev", "cv"], rows)],
    )


def estimated_wait(report: SimulationReport) -> Body:
    rows: list[list[object]] = [
        [
            ch,
            e.contacts,
            seconds(e.mean_estimate),
            seconds(e.mean_actual),
            percent(e.bias, signed=True),
            seconds(e.mean_absolute_error),
            percent(e.relative_error),
        ]
        for ch, e in report.wait_estimates.items()
        if e is not None
    ]
    header = ["channel", "contacts", "mean estimate", "mean actual", "bias", "MAE", "MAE share"]
    return (
        "GetContact right after a submission that queued, vs the wait that followed",
        [
            _table(header, rows),
            f"{INDENT}bias = (mean estimate - mean actual) / mean actual; MAE = mean absolute "
            "error; MAE share = MAE / mean actual",
        ],
    )


def preferred_skills(report: SimulationReport) -> Body | None:
    rows: list[list[object]] = [
        [
            p.channel,
            ",".join(p.preferred_skills),
            p.contacts,
            p.answered,
            percent(p.matched_share),
            percent(p.service_level),
            seconds(p.asa),
            seconds(p.p90_wait),
        ]
        for p in report.preferences
    ]
    if not rows:
        return None
    header = ["channel", "preferred", "contacts", "answered", "by preferred agent", "SL"]
    header += ["ASA", "p90 wait"]
    return (
        "contacts that preferred skills: share answered by an agent with all of them, and "
        "their waits",
        [_table(header, rows)],
    )


def customers(report: SimulationReport) -> Body | None:
    figures = report.customers
    if not figures:
        return None
    header = ["channel", "customer", "contacts", "answered", "reached", "router's pick", "SL"]
    header += ["ASA", "p90 wait"]
    rows: list[list[object]] = [
        [
            c.channel,
            c.kind,
            c.contacts,
            c.answered,
            percent(c.reached_share),
            percent(None if c.router_agreed is None else c.router_agreed / c.contacts),
            percent(c.service_level),
            seconds(c.asa),
            seconds(c.p90_wait),
        ]
        for c in figures
    ]
    lines = [
        _table(header, rows),
        f"{INDENT}router's pick = the router gave the contact that same previous agent at "
        "submission",
    ]
    for ch, (answered, previous) in report.server_returning.items():
        lines.append(
            f"{INDENT}server (GetContactReport): {ch} returning answered {answered}, "
            f"{percent(previous / answered)} first answered by the previous agent"
        )
    return (
        "client side: reached = answered by the agent who completed the customer's previous "
        "contact, or by the agent the gateway named",
        lines,
    )


def backlog(report: SimulationReport) -> Body | None:
    b = report.backlog
    if b is None:
        return None
    rows: list[list[object]] = [
        [agent, seconds(at, digits=0), n, handled] for agent, at, n, handled in b.per_agent
    ]
    cleared = "not all answered" if b.cleared_at is None else f"{b.cleared_at:.0f} s"
    return (
        "contacts waiting at the start: who answered them, agents in order of sign-in",
        [
            _table(["agent", "signed in", "backlog answered", "handled"], rows),
            f"{INDENT}{b.answered} of {b.contacts} answered; the first agent to sign in took "
            f"{b.first_took} ({percent(b.first_share)}, {percent(1 / len(b.per_agent))} would "
            f"be an equal share); cv across agents {number(b.cv, 3)}; ASA {seconds(b.asa)}, "
            f"max wait {seconds(b.max_wait)}; last answered at {cleared}",
        ],
    )


def unserved(report: SimulationReport) -> Body | None:
    figures = report.unserved
    if not figures:
        return None
    header = ["channel", "why", "contacts", "listed", "rerouted", "answered"]
    header += ["abandoned", "left", "ASA", "max wait", "waited (unanswered)"]
    rows: list[list[object]] = [
        [
            u.channel,
            u.reason,
            u.contacts,
            u.listed,
            u.rerouted,
            u.answered,
            u.abandoned,
            u.left,
            seconds(u.asa),
            seconds(u.max_wait),
            seconds(u.mean_wait_unanswered),
        ]
        for u in figures
    ]
    counters = report.counters
    polls = (
        f"; {counters.queue_polls} GetQueueStatus polls, at most "
        f"{counters.unserved_peak} unserved at once"
        if counters.queue_polls
        else ""
    )
    return (
        "contacts that waited with no signed-in agent able to serve them: GetContact's wait "
        "reason at arrival, or listed by GetQueueStatus",
        [
            _table(header, rows),
            f"{INDENT}why = GetContact's wait reason right after submission (later: only the "
            "live queue listed it); listed = GetQueueStatus listed it among the unserved",
            f"{INDENT}rerouted = moved by the fallback rule (its required skills changed); "
            f"waited (unanswered) = mean time until the customer left{polls}",
        ],
    )


def queue_position(report: SimulationReport) -> Body | None:
    figures = report.positions
    if not figures:
        return None
    header = ["channel", "skills", "samples", "mean queue_position", "mean routing_position"]
    header += ["checked", "countdown exact", "within 1"]
    rows: list[list[object]] = [
        [
            p.channel,
            ",".join(sorted(p.skills)) or "-",
            p.samples,
            number(p.mean_queue_position, 2),
            number(p.mean_routing_position, 2),
            p.checked,
            percent(p.exact_share),
            percent(p.within_one_share),
        ]
        for p in figures
    ]
    return (
        "GetContact right after a submission that queued; per line of contacts with the same "
        "channel and required skills",
        [
            _table(header, rows),
            f"{INDENT}countdown: of that line's contacts waiting at the sample, queue_position "
            "- 1 were answered before it (abandons ahead of it make it fewer)",
        ],
    )


def callbacks(report: SimulationReport) -> Body | None:
    figures = report.callbacks
    if not figures:
        return None
    header = ["came on", "offered", "taken", "placed", "reached", "unreached", "wrong number"]
    header += ["left", "dials", "dials per reached", "waited before", "to first dial"]
    header += ["to reach", "p90 to reach", "SL"]
    rows: list[list[object]] = [
        [
            c.channel,
            c.offered,
            f"{c.taken} ({percent(c.take_share)})",
            c.placed,
            c.reached,
            c.unreached,
            c.wrong_number,
            c.left,
            c.dials,
            number(c.attempts_per_reached, 2),
            seconds(c.waited_before),
            seconds(c.time_to_place),
            seconds(c.time_to_reach),
            seconds(c.p90_time_to_reach),
            percent(c.service_level),
        ]
        for c in figures
    ]
    lines = [
        _table(header, rows),
        f"{INDENT}offered = GetContact said callback_offered while the customer waited; taken = "
        "RequestCallback acknowledged; placed = dialled; left = neither reached nor "
        "unreached at the close; times from the contact's first moment in the queue",
        f"{INDENT}SL = first dialled within {_num(report.callback_target)} s of the first "
        "moment / (dialled + unreached before a dial), the router's callback formula",
        *_server_callback_lines(report),
    ]
    levels = report.call_levels
    if levels:
        header = ["channel", "calls", "answered", "abandoned", "SL (callbacks apart)"]
        header += ["callbacks", "reached within target", "SL (every call)"]
        table: list[list[object]] = [
            [
                c.channel,
                c.inbound,
                c.answered,
                f"{c.abandoned} ({percent(c.abandon_share)})",
                percent(c.inbound_level),
                c.callbacks,
                c.callbacks_within,
                percent(c.every_call_level),
            ]
            for c in levels
        ]
        lines += [
            _table(header, table),
            f"{INDENT}SL (every call): a callback counts as answered within the channel's "
            "target when reached within it of its first moment, else as a miss; abandoned "
            "share of calls and callbacks",
            *_server_call_lines(report, [c.channel for c in levels]),
        ]
    return (
        "customers offered a callback while they waited, by the channel they came on",
        lines,
    )


def _server_callback_lines(report: SimulationReport) -> list[str]:
    """The router's callback rows (GetServiceLevel.callbacks), intervals added up."""
    if report.server is None:
        return []
    by_channel: dict[str, list[pb.CallbackServiceLevelRow]] = {}
    for row in report.server.callbacks:
        by_channel.setdefault(channel_name(row.requested_from), []).append(row)
    lines = []
    for channel, rows in by_channel.items():
        placed = sum(r.placed for r in rows)
        within = sum(r.placed_within_target for r in rows)
        counted = placed + sum(r.unreached_before_dial for r in rows)
        level = percent(within / counted if counted else None)
        lines.append(
            f"{INDENT}router (GetServiceLevel callbacks, every callback of the window): from "
            f"{channel} requested {sum(r.requested for r in rows)}, placed {placed}, within "
            f"target {within}, reached {sum(r.reached for r in rows)}, unreached "
            f"{sum(r.unreached for r in rows)}, cancelled {sum(r.cancelled for r in rows)}, "
            f"dials {sum(r.dials for r in rows)}, SL {level}"
        )
    return lines


def _server_call_lines(report: SimulationReport, channels: list[str]) -> list[str]:
    """The router's own inbound figures (callbacks apart) for these channels, days added up."""
    if report.server is None:
        return []
    lines = []
    for channel in channels:
        rows = [r for r in report.server.rows if channel_name(r.channel) == channel]
        if not rows:
            continue
        within = sum(r.answered_within_threshold for r in rows)
        answered = sum(r.answered for r in rows)
        abandoned = sum(r.abandoned for r in rows)
        counted = answered + abandoned - sum(r.short_abandoned for r in rows)
        lines.append(
            f"{INDENT}router (GetServiceLevel rows, callbacks apart, every contact of the "
            f"window): {channel} offered {sum(r.offered for r in rows)}, answered {answered}, "
            f"abandoned {abandoned}, within target {within}, SL "
            f"{percent(within / counted if counted else None)}"
        )
    return lines


def fidelity(report: SimulationReport) -> Body | None:
    f = report.fidelity
    if f.submit_lag is None and f.handle_overhead is None:
        return None

    def both(simulated: float | None) -> str:
        real = f.real_ms(simulated)
        return "-" if simulated is None or real is None else f"{simulated:.2f} s ({real:.0f} ms)"

    return (
        "how closely the run kept its clock: simulated seconds (real milliseconds); at "
        f"{_num(f.time_scale)}x a real millisecond is {_num(f.time_scale / 1000)} simulated s",
        [
            f"{INDENT}submit lag (arrival due -> SubmitContact acknowledged): mean "
            f"{both(f.submit_lag)}, p90 {both(f.p90_submit_lag)}",
            f"{INDENT}handle overhead (agent held a contact beyond its drawn talk and "
            f"wrap-up, {f.contacts} contacts): mean {both(f.handle_overhead)}",
            f"{INDENT}occupancy of all agents together, from the warm-up to the end of the "
            f"arrivals: {percent(f.occupancy)}",
        ],
    )


def notes(report: SimulationReport) -> Body | None:
    if not report.notes:
        return None
    return "what a setting means in this run", [f"{INDENT}{note}" for note in report.notes]


def _server_row(row: pb.ServiceLevelRow, scale: float) -> list[object]:
    counts = [row.offered, row.answered, row.abandoned, row.short_abandoned]
    return [
        when(row.interval_start),
        channel_name(row.channel),
        *counts,
        row.answered_within_threshold,
        seconds(row.threshold_seconds * scale, digits=0),
        percent(optional(row, "service_level")),
        seconds(scaled(optional(row, "asa_seconds"), scale)),
        seconds(scaled(optional(row, "aht_seconds"), scale)),
        seconds(scaled(optional(row, "mean_acw_seconds"), scale)),
    ]


def server_report(report: SimulationReport) -> Body:
    scale = report.time_scale
    about = (
        f"GetServiceLevel, ALL contacts queued in [{report.window[0]}, {report.window[1]}), "
        f"not only this run's, per UTC day; times x {_num(scale)} to simulated seconds"
    )
    if report.server is None:
        return about, [f"{INDENT}unavailable (GetServiceLevel failed, see errors)"]
    header = ["day", "channel", "offered", "answered", "abandoned", "short"]
    header += ["within", "threshold", "SL", "ASA", "AHT", "mean ACW"]
    rows = [_server_row(row, scale) for row in report.server.rows]
    limit = report.server.short_abandon_seconds * scale
    return about, [
        _table(header, rows),
        f"{INDENT}formula: {report.server.formula}",
        f"{INDENT}short abandon limit: {limit:.3g} s",
    ]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} x{n}" for key, n in counter.most_common())


def calls(report: SimulationReport) -> Body:
    c = report.counters
    withdrawn = ", ".join(f"{k} {v}" for k, v in sorted(c.withdrawn.items())) or "none"
    lines = [
        f"{INDENT}offers {c.offers}, declined {c.declined}, withdrawn: {withdrawn}, "
        f"other runs' contacts handled {c.foreign}, RPC retries {c.retries}"
    ]
    if c.refused:
        lines.append(f"{INDENT}refused as expected (state changed meanwhile): {_counts(c.refused)}")
    lines.append(f"{INDENT}gRPC errors: {sum(c.errors.values())}")
    if c.errors:
        lines.append(f"{INDENT}  {_counts(c.errors)}")
    return "offers, refusals and errors of this run's gRPC calls", lines


SECTIONS = (
    Section("THIS RUN'S CONTACTS", contacts),
    Section("AGENTS", agents),
    Section("FAIRNESS", fairness),
    Section("ESTIMATED WAIT", estimated_wait),
    Section("PREFERRED SKILLS", preferred_skills),
    Section("RETURNING AND NAMED CUSTOMERS", customers),
    Section("BACKLOG", backlog),
    Section("UNSERVED", unserved),
    Section("QUEUE POSITION", queue_position),
    Section("CALLBACKS", callbacks),
    Section("NOTES", notes),
    Section("SERVER REPORT", server_report),
    Section("FIDELITY", fidelity),
    Section("CALLS", calls),
)


def render(report: SimulationReport) -> str:
    """The whole report: the run's heading, then each section that has something to say."""
    # A router at --router does not say its reserve: the heading claims none then.
    reserve = "" if report.phone_reserve is None else f"  phone reserve {report.phone_reserve}"
    lines = [
        f"simulation {report.run_id}  scenario {report.scenario}  seed {report.seed}  "
        f"router {report.router}  {report.agents} agents  time scale "
        f"{_num(report.time_scale)}x{reserve}",
        f"arrivals {report.arrivals_seconds:.0f} s  drain {report.drain_seconds:.0f} s  "
        f"(simulated; {report.arrivals_seconds / report.time_scale:.1f} s of real time for "
        "the arrivals)",
    ]
    for section in SECTIONS:
        said = section.body(report)
        if said is not None:
            about, body = said
            lines += ["", f"{section.title} ({about})", *body]
    return "\n".join(lines)
