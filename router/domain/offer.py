"""An offer: one contact reserved for one agent until it accepts, declines or times out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    contact_id: str
    agent_id: str
    offered_at: datetime
    expires_at: datetime
