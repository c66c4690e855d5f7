"""Named SQL statements, loaded once from queries.sql."""

from __future__ import annotations

import re
from importlib.resources import files
from types import MappingProxyType

_NAME = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def _load() -> MappingProxyType[str, str]:
    text = files("router.store").joinpath("queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        queries[name] = "\n".join(lines).strip()
    return MappingProxyType(queries)


QUERIES = _load()
