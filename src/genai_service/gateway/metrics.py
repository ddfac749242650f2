"""Prometheus counters of the model calls: tokens by model and kind, calls by purpose and how
they ended, and refusals by reason. Counted once, in the gateway, for every caller."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from genai_service.gateway.guards import CallOutcome, ModelCall


class ModelCallMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """`registry`: the app's (served at `/metrics`); a registry of its own otherwise."""
        self.registry = registry or CollectorRegistry()
        self.tokens = Counter(
            "model_tokens_total",
            "Tokens of the model calls, by model and kind (prompt or completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.calls = Counter(
            "model_calls_total",
            "Model calls by model, purpose and how they ended (completed, failed, cancelled).",
            ["model", "purpose", "status"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "model_call_refusals_total",
            "Model calls a guard refused, by reason (the problem type's last part).",
            ["reason"],
            registry=self.registry,
        )

    def settled(self, call: ModelCall, outcome: CallOutcome) -> None:
        self.tokens.labels(call.model, "prompt").inc(outcome.prompt_tokens)
        self.tokens.labels(call.model, "completion").inc(outcome.completion_tokens)
        self.calls.labels(call.model, call.purpose, outcome.status).inc()

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()
