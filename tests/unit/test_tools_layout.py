"""The tools package stays a house of small modules: each under 600 lines, no private
name imported from another module, and one table renderer (contact_router_tools.tables)
that every command and script uses instead of aligning columns itself; and the commands
it adds to `contact-router` are the ones router/cli.py names."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import contact_router_tools
import pytest
from contact_router_tools import commands

from router import cli

ROOT = Path(__file__).parents[2]
TOOLS = Path(contact_router_tools.__file__).parent
MODULES = sorted(TOOLS.rglob("*.py"))
RENDERER = TOOLS / "tables.py"
WIDTH = re.compile(r"(.?[<>=^])?[-+ ]?z?#?[1-9]")  # a width (zero-padded ids aside)
# The scripts that print tables: every one under scenarios/, and the benchmark that
# measures a waiting contact's memory.
SCRIPTS = sorted((ROOT / "scenarios").glob("*.py"))
USERS = [*MODULES, *SCRIPTS, ROOT / "bench" / "queue_memory.py"]


def name(path: Path) -> str:
    return str(path.relative_to(ROOT if path.is_relative_to(ROOT) else TOOLS.parent))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_modules_are_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) < 600


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_no_private_name_is_imported(path: Path) -> None:
    tree = ast.parse(path.read_text())
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


@pytest.mark.parametrize("path", [p for p in USERS if p != RENDERER], ids=name)
def test_columns_are_aligned_by_the_one_renderer(path: Path) -> None:
    """ljust/rjust and format specs with a width (`:>8`, `:8.1f`) are the renderer's
    business."""
    tree = ast.parse(path.read_text())
    aligning = [
        node.lineno
        for node in ast.walk(tree)
        if (
            (isinstance(node, ast.Attribute) and node.attr in ("ljust", "rjust"))
            or (
                isinstance(node, ast.FormattedValue)
                and node.format_spec is not None
                and any(
                    isinstance(part, ast.Constant) and WIDTH.match(str(part.value))
                    for part in ast.walk(node.format_spec)
                )
            )
        )
    ]
    assert aligning == []


def test_the_router_names_the_commands_the_tools_add() -> None:
    """router/cli.py names the tools' commands (to say how to install the tools when one
    is missing): the same commands the tools add to its parser, each with its run."""
    added = argparse.ArgumentParser().add_subparsers(dest="command")
    commands.add_commands(added)
    assert set(added.choices) == set(cli.TOOLS) == set(commands.RUNS)
