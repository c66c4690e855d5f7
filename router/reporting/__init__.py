"""Reporting: pure pieces (intervals, report shaping, staffing, the service-level alarm).

Nothing here reads a clock, a database or the network: callers pass every value in.
"""
