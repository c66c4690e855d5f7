"""PostgreSQL URLs naming another database on the same server.

A URL may carry its host in the query (`postgresql://u@/db?host=/run/socket`, as the
embedded server's does), so the database is the URL's path, never "after the last /".
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def with_database(url: str, database: str) -> str:
    """`url` with its database replaced by `database`."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def database_of(url: str) -> str:
    """The database `url` names."""
    return urlsplit(url).path.lstrip("/")
