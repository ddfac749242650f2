"""Prometheus metrics the providers report about themselves, read when `/metrics` is scraped.

A provider that has something to report (the local chat engine: tokens decoded, steps, the
sequences it holds) offers `metric_families`; the collector asks every provider of the registry
each time it is scraped, so nothing is counted twice and a provider pays nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from genai_service.inference.registry import ModelRegistry


@runtime_checkable
class ReportsMetrics(Protocol):
    def metric_families(self) -> list[Metric]:
        """This provider's metrics now; none while it is not running."""
        ...


class ProviderMetrics(Collector):
    def __init__(self, models: ModelRegistry) -> None:
        self._models = models

    def collect(self) -> Iterator[Metric]:
        for provider in self._models.providers():
            if isinstance(provider, ReportsMetrics):
                yield from provider.metric_families()
