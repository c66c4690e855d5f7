"""RecordFeedback: a survey system's rating of a contact (served by ContactService)."""

from __future__ import annotations

from contactrouter.v1 import contact_router_pb2 as pb

from router.api.convert import timestamp
from router.domain import InvalidArgument, validation
from router.reporting.reporting import Reporting
from router.switchboard import Switchboard

MAX_COMMENT = 2000
MAX_SOURCE = 100


async def record_feedback(
    switchboard: Switchboard, reporting: Reporting, request: pb.RecordFeedbackRequest
) -> pb.RecordFeedbackResponse:
    """Validate, check the contact exists (NOT_FOUND otherwise), then write durably."""
    contact_id = validation.uuid_text(request.contact_id, "contact_id")
    if not 1 <= request.rating <= 5:
        raise InvalidArgument("rating", f"{request.rating} is not a rating: use 1 to 5")
    if len(request.comment) > MAX_COMMENT:
        raise InvalidArgument("comment", f"at most {MAX_COMMENT} characters")
    if len(request.source) > MAX_SOURCE:
        raise InvalidArgument("source", f"at most {MAX_SOURCE} characters")
    for field in ("comment", "source"):
        if "\x00" in getattr(request, field):
            raise InvalidArgument(field, "must not contain NUL characters")
    await switchboard.status(contact_id)
    recorded_at = await reporting.record_feedback(
        contact_id, request.rating, request.comment, request.source
    )
    return pb.RecordFeedbackResponse(recorded_at=timestamp(recorded_at))
