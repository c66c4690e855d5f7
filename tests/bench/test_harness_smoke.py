"""The benchmark harness at toy size, so that it keeps working as the router changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import core, report

REPO = Path(__file__).resolve().parents[2]


class TestHarness:
    # A guard against a hang, not a speed test: the quick run took 21 s alone and 78 s
    # beside make test's other workers on a loaded machine, against the 100 s it had.
    @pytest.mark.timeout(330)
    def test_quick_run_measures_router_and_baselines(self, server_url: str, tmp_path: Path) -> None:
        """One command drives the router and both baselines and every timing is recorded."""
        figures_path = tmp_path / "figures.json"
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "--scale",
                "quick",
                "--parts",
                "lifecycle,pg",
                "--rounds",
                "1",
                "--database",
                server_url,
                "--json",
                str(figures_path),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        figures = json.loads(figures_path.read_text())
        (round_,) = figures["lifecycle"]
        router, bare = round_["router"], round_["bare"]
        assert router["lifecycles_per_second"] > 0
        assert bare["lifecycles_per_second"] > 0
        assert router["errors"] == {}
        assert bare["errors"] == {}
        assert router["latency_samples"] > 0
        assert router["db"]["completed_acknowledged"] == router["db"]["completed_recorded"]
        assert figures["pg"]["batched_per_second"] > 0
        assert "| throughput >= 60% of bare gRPC |" in completed.stdout

    def test_core_point_counts_memory_and_decisions(self) -> None:
        """The core microbenchmark sees the agents' and the queue's memory and times calls."""
        point = core.run_point(agents=50, queued=300, decisions=100)
        assert point.bytes_per_agent > 0
        assert point.bytes_per_queued_contact > 0
        assert 0 < point.busy_complete_us["p50"] <= point.busy_complete_us["p99"]
        assert 0 < point.idle_submit_us["p50"] <= point.idle_submit_us["p99"]

    def test_report_renders_targets(self) -> None:
        """Ratios and targets come out of the figures as written."""
        side = {
            "lifecycles_per_second": 300.0,
            "latency_rate": 150.0,
            "latency_ms": {"p50": 1.0, "p99": 4.0, "p99.9": 6.0},
            "server_cpu_ms_per_lifecycle": 3.0,
            "client_cpu_ms_per_lifecycle": 2.0,
            "postgres_cpu_ms_per_lifecycle": 1.0,
            "rss_mb": 50.0,
            "errors": {},
            "db": {"completed_acknowledged": 10, "completed_recorded": 10},
        }
        figures = {
            "command": "python -m bench",
            "revision": "abc",
            "started": "now",
            "cpus": 2,
            "load_before": (0.0, 0.0, 0.0),
            "shape": {
                "agents": 1,
                "agent_processes": 1,
                "gateway_processes": 1,
                "window": 1,
                "warmup": 1,
                "measure": 1,
                "latency_seconds": 1,
            },
            "lifecycle": [{"router": side, "bare": {**side, "lifecycles_per_second": 600.0}}],
        }
        text = report.markdown(figures)
        assert "ratio **0.50**" in text
        assert "| routing latency p99 < 5 ms at half the maximum | 4.00 ms | met |" in text
        assert "| >= 500 lifecycles/s, every timing committed | 300 | **not met** |" in text
