"""The local chat engine's counters as Prometheus metric families (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from genai_service.inference.local.engine import EngineStats


def engine_metric_families(stats: EngineStats) -> list[Metric]:
    return [
        CounterMetricFamily(
            "local_chat_generated_tokens",
            "Tokens the local chat engine generated, in every request.",
            value=stats.generated_tokens,
        ),
        CounterMetricFamily(
            "local_chat_prompt_tokens",
            "Prompt tokens of the requests the local chat engine admitted.",
            value=stats.prompt_tokens,
        ),
        CounterMetricFamily(
            "local_chat_reused_prompt_tokens",
            "Of those, tokens whose KV cache was reused from an earlier or a running sequence.",
            value=stats.reused_tokens,
        ),
        CounterMetricFamily(
            "local_chat_decode_steps",
            "llama.cpp decode calls; the sequences decoded together share one.",
            value=stats.decode_steps,
        ),
        GaugeMetricFamily(
            "local_chat_active_sequences",
            "Requests holding a sequence slot (being prefilled or generating).",
            value=stats.active,
        ),
        GaugeMetricFamily(
            "local_chat_queued_requests",
            "Requests waiting for a sequence slot.",
            value=stats.queued,
        ),
        GaugeMetricFamily(
            "local_chat_threads",
            "Threads llama.cpp decodes with now (tuned while serving unless set).",
            value=stats.threads,
        ),
    ]
