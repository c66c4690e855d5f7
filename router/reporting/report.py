"""Ratios for reports: a share that is None when there is nothing to divide. Pure.
(The command-line tools render reports: contact_router_tools.tables.)"""

from __future__ import annotations


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0 (nothing to divide)."""
    return None if denominator <= 0 else numerator / denominator
