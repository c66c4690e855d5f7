"""A staffing plan's rows to protobuf (GetStaffing), apart from the servicer."""

from __future__ import annotations

from contactrouter.v1 import contact_router_pb2 as pb

from router.api.convert import timestamp
from router.reporting.plan import StaffingRow


def staffing_row_to_proto(r: StaffingRow, callbacks: bool) -> pb.StaffingRow:
    """`callbacks`: the plan counted queued callbacks' work (phone from history)."""
    s = r.staffed
    row = pb.StaffingRow(
        interval_start=timestamp(r.interval_start),
        calls=s.calls,
        aht_seconds=s.aht_seconds,
        traffic_erlangs=s.traffic_erlangs,
        agents=s.agents,
        agents_scheduled=s.agents_scheduled,
        service_level=s.service_level,
        asa_seconds=s.asa_seconds,
        occupancy=s.occupancy,
        probability_of_waiting=s.probability_of_waiting,
    )
    if s.abandonment is not None:
        row.abandonment = s.abandonment
    if r.separate_agents is not None:
        row.separate_agents = r.separate_agents
    if r.actual is not None:
        row.staffed_agents = r.actual.staffed_agents
        if r.actual.service_level is not None:
            row.measured_service_level = r.actual.service_level
        row.missed = r.actual.missed
    if callbacks:
        row.callback_erlangs = s.callback_erlangs
    return row
