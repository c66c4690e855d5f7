"""`python -m bench`: the whole benchmark in one command (see bench/__init__.py)."""

from __future__ import annotations

import sys

from bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
