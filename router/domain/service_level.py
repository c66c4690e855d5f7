"""Service level: the promise a contact center reports against."""

from __future__ import annotations

FORMULA = (
    "service level = answered within threshold / "
    "(answered + abandoned - abandoned within the short-abandon limit); "
    "a wait counts only the time its channel was open (hours of operation); "
    "contacts a supervisor cancelled (not customers) count in neither"
)


def service_level(
    answered_within_threshold: int, answered: int, abandoned: int, short_abandoned: int
) -> float | None:
    """The share in [0, 1], or None when no contact counts (no answer, no long abandon)."""
    denominator = answered + abandoned - short_abandoned
    if denominator <= 0:
        return None
    return answered_within_threshold / denominator
