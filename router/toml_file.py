"""Reading the TOML files an operator writes (settings, tokens, scenarios)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from router.errors import ConfigError


class TomlFileError(ConfigError):
    """The file cannot be read or is not TOML; the message names the file and why."""


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TomlFileError(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise TomlFileError(f"{path} is not valid TOML: {error}") from None
