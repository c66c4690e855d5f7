"""Counters and histograms kept by the event loop's thread alone: plain numbers, exposed
exactly as prometheus_client's own.

prometheus_client's Counter and Histogram may be changed from any thread: each inc or
observe runs four to six Python calls and takes a lock. The router changes its hottest
metrics (per RPC, per commit) on the event loop's thread only, and reads them there too
(a scrape is served from the loop, router/metrics.py), so these keep plain numbers and,
when the registry collects them (LoopCollector), yield the same metric families: names,
help, labels, buckets and samples.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class LoopCounter:
    """A counter (its samples `<name>_total`), by `labelnames`; without labels it is
    shown at 0 from the start, as prometheus_client shows one."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, labels: tuple[str, ...] = ()) -> None:
        """ValueError, as prometheus_client's, for a negative amount or labels that are
        not one value per label name."""
        if amount < 0 or len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name}: inc({amount}, {labels}) by {self.labelnames}")
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in self._values.items():
            family.add_metric(labels, value)
        return family


class LoopHistogram:
    """A histogram with the upper bounds `buckets` (and +Inf), by `labelnames`; without
    labels it is shown empty from the start, as prometheus_client shows one."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        labelnames: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = tuple(float(bound) for bound in buckets)
        # The `le` labels as prometheus_client writes them (untyped in the library).
        self._le = [*(floatToGoString(b) for b in self._bounds), "+Inf"]  # type: ignore[no-untyped-call]
        # Per label values: the count in each bucket (not cumulative), and the sum.
        self._counts: dict[tuple[str, ...], list[float]] = {}
        self._sums: dict[tuple[str, ...], float] = {}
        if not labelnames:
            self._counts[()] = [0.0] * len(self._le)
            self._sums[()] = 0.0

    def observe(self, amount: float, labels: tuple[str, ...] = ()) -> None:
        """ValueError, as prometheus_client's, for labels that are not one value per
        label name."""
        counts = self._counts.get(labels)
        if counts is None:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name}: observe({labels}) by {self.labelnames}")
            counts = self._counts[labels] = [0.0] * len(self._le)
            self._sums[labels] = 0.0
        # The first bucket whose upper bound is at least `amount` (+Inf past the last).
        counts[bisect_left(self._bounds, amount)] += 1.0
        self._sums[labels] += amount

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, counts in self._counts.items():
            buckets = list(zip(self._le, accumulate(counts), strict=True))
            family.add_metric(labels, buckets, self._sums[labels])
        return family


class LoopCollector(Collector):
    """Exposes loop metrics to a registry, in the order given."""

    def __init__(self, *metrics: LoopCounter | LoopHistogram) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        for metric in self._metrics:
            yield metric.family()
