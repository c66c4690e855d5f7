"""Loop metrics (router/loop_metrics.py) expose what prometheus_client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from router.loop_metrics import LoopCollector, LoopCounter, LoopHistogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class TestSameExposition:
    def test_counters_and_histograms_with_and_without_labels(self) -> None:
        """The same observations give the same text, in both exposition formats: names,
        help, labels, buckets (an observation on a bound goes in its bucket, one past
        the last in +Inf), counts and sums; unlabelled ones shown at zero from the start."""
        disable_created_metrics()  # type: ignore[no-untyped-call]  # as RouterMetrics does
        library, loop = CollectorRegistry(), CollectorRegistry()
        latency = Histogram("t_seconds", "Latency.", ["method"], buckets=BUCKETS, registry=library)
        rows = Histogram("t_rows", "Rows.", buckets=(1, 2, 5), registry=library)
        calls = Counter("t_calls_total", "Calls.", ["method", "code"], registry=library)
        callers = Counter("t_callers", "Callers.", registry=library)
        Counter("t_idle", "Never counted.", registry=library)
        loop_latency = LoopHistogram("t_seconds", "Latency.", BUCKETS, ["method"])
        loop_rows = LoopHistogram("t_rows", "Rows.", (1, 2, 5))
        loop_calls = LoopCounter("t_calls_total", "Calls.", ["method", "code"])
        loop_callers = LoopCounter("t_callers", "Callers.")
        loop_idle = LoopCounter("t_idle", "Never counted.")
        loop.register(LoopCollector(loop_latency, loop_rows, loop_calls, loop_callers, loop_idle))
        for method, seconds in (("A", 0.0005), ("A", 0.003), ("B", 7.0), ("A", 0.0)):
            latency.labels(method).observe(seconds)
            loop_latency.observe(seconds, (method,))
            calls.labels(method, "OK").inc()
            loop_calls.inc(labels=(method, "OK"))
        for count in (1, 2, 3, 9):
            rows.observe(count)
            loop_rows.observe(count)
        callers.inc(2.5)
        loop_callers.inc(2.5)
        assert generate_latest(loop) == generate_latest(library)
        openmetrics = generate_openmetrics  # untyped in the library
        assert openmetrics(loop) == openmetrics(library)  # type: ignore[no-untyped-call]

    def test_wrong_labels_and_a_negative_count_are_refused(self) -> None:
        """As prometheus_client refuses them: a mistake in the router's code shows at
        once, not as a family that cannot be scraped."""
        calls = LoopCounter("t_calls_total", "Calls.", ["method"])
        latency = LoopHistogram("t_seconds", "Latency.", BUCKETS, ["method"])
        for wrong in ((), ("A", "B")):
            with pytest.raises(ValueError, match="t_calls_total"):
                calls.inc(labels=wrong)
            with pytest.raises(ValueError, match="t_seconds"):
                latency.observe(0.1, wrong)
        with pytest.raises(ValueError, match="t_calls_total"):
            calls.inc(-1.0, ("A",))
