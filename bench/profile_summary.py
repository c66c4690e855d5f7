"""Where a profiled router spends its time, by layer.

    python -m bench --parts lifecycle --rounds 1 --profile /tmp/router.prof
    python -m bench.profile_summary /tmp/router.prof

cProfile's own time per function (tottime) is summed by the file it is in. Time
inside gRPC's C core and its Cython callbacks shows up as `Context.run` (the event
loop runs those callbacks in a context), so it is reported as its own line.
"""

from __future__ import annotations

import pstats
import sys

# First match wins: (layer, substring of the file name or function).
_LAYERS = (
    ("waiting for I/O (epoll: idle)", "select.epoll"),
    ("gRPC C core and Cython callbacks", "_contextvars.Context"),
    ("socket sends", "_socket.socket"),
    ("router.api (servicers, convert, errors)", "/router/api/"),
    ("router.switchboard", "/router/switchboard.py"),
    ("router.domain (routing core)", "/router/domain/"),
    ("router.store (group commit, rows)", "/router/store/"),
    ("router.metrics", "/router/metrics.py"),
    ("asyncpg", "/asyncpg/"),
    ("protobuf (Python side)", "/google/protobuf/"),
    ("grpc (Python side)", "/grpc/"),
    ("prometheus_client", "/prometheus_client/"),
    ("structlog", "/structlog/"),
    ("asyncio event loop", "/asyncio/"),
    ("uuid, datetime, dataclasses", "/uuid.py"),
)


def by_layer(path: str) -> list[tuple[str, float]]:
    stats = pstats.Stats(path)
    totals: dict[str, float] = {}
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in entries.items():
        where = f"{filename}:{function}"
        layer = next(
            (name for name, part in _LAYERS if part in where), "other (builtins, C methods)"
        )
        totals[layer] = totals.get(layer, 0.0) + tottime
    return sorted(totals.items(), key=lambda item: -item[1])


def main(path: str) -> None:
    layers = by_layer(path)
    busy = sum(seconds for name, seconds in layers if not name.startswith("waiting"))
    print("| layer | seconds | share of busy time |")
    print("|---|---|---|")
    for name, seconds in layers:
        share = "" if name.startswith("waiting") else f"{100 * seconds / busy:.0f}%"
        print(f"| {name} | {seconds:.2f} | {share} |")
    print()
    pstats.Stats(path, stream=sys.stdout).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main(sys.argv[1])
