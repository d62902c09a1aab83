"""The AI hub's Prometheus metrics (served by GET /metrics, city/metrics.py).

Names follow OpenTelemetry's GenAI semantic conventions where one exists, in Prometheus form (dots to
underscores, the unit as a suffix): `gen_ai_server_request_duration_seconds`,
`gen_ai_server_time_to_first_token_seconds` and `gen_ai_client_token_usage` (City is the upstream's
client), with the conventions' bucket boundaries and attributes (`gen_ai_operation_name`,
`gen_ai_provider_name`, `gen_ai_request_model`, `gen_ai_token_type`, `error_type`). The token counts
are the histogram's `_sum`: `rate(gen_ai_client_token_usage_sum[5m])` is tokens per second. What the
conventions do not name is City's own: `city_ai_*`.

Most of it is fed from one place, the finished usage record (`observe_call`, from AiCall.settle), so
the metrics count what the usage records say. Cost is a float counter in USD: fine for dashboards and
alerts; the exact money (integers in 1e-12 USD) lives in the usage records and rollups.

Hot path: a call's label values are a tuple; the metric children bound to that tuple are made once
and kept (`_children`), so a call costs one dict lookup and a few increments.
"""

import logging
from typing import Any

from city.metrics import cached_labels, counter, histogram, live_gauge

log = logging.getLogger("aihub.metrics")

# OpenTelemetry's recommended bucket boundaries (gen_ai-metrics.md).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

# gen_ai.operation.name by the meter's modality (City's routes).
OPERATION = {"chat": "chat", "text": "chat", "stream": "chat", "completions": "text_completion", "embeddings": "embeddings"}
PICO = 1e-12  # usage records count money in 1e-12 USD

GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

requests = counter(
    "city_ai_requests_total",
    "AI calls admitted and finished, by route, model, provider, HTTP status and error code (status 499: the client left).",
    ("route", "gen_ai_request_model", "gen_ai_provider_name", "status", "error_type"),
)
duration = histogram(
    "gen_ai_server_request_duration_seconds",
    "AI call duration, from admission to the last byte (or the failure).",
    (*GENAI, "error_type"),
    DURATION_BUCKETS,
)
time_to_first_token = histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "Time from admission to the upstream's first chunk, for streamed calls.",
    GENAI,
    TTFT_BUCKETS,
)
token_usage = histogram(
    "gen_ai_client_token_usage",
    "Input and output tokens per AI call, as billed (the upstream's count, else City's).",
    (*GENAI, "gen_ai_token_type"),
    TOKEN_BUCKETS,
)
cost = counter(
    "city_ai_cost_usd_total",
    "Cost of AI calls in USD (a float; the usage records hold it exactly).",
    ("route", "gen_ai_request_model", "gen_ai_provider_name"),
)
upstream_errors = counter(
    "city_ai_upstream_errors_total",
    "Failed upstream attempts (each retry counts), by provider and City's status for the failure.",
    ("gen_ai_provider_name", "status"),
)
failovers = counter(
    "city_ai_failovers_total", "Moves from a failing deployment to the model's next one, by the provider left.", ("gen_ai_provider_name",)
)
refusals = counter(
    "city_ai_refusals_total",
    "AI calls refused before any upstream: rate limits and concurrency (429), budget and per-request cap (402), plan (403), unknown model (404).",
    ("status", "code"),
)
reservations_outstanding = live_gauge(
    "city_ai_reservations_outstanding", "AI calls reserved on their plans and not yet settled (summed over the living processes)."
)


def reservation_taken() -> None:
    """A reservation made (until reservation_settled): a gauge that cannot be written is logged, never
    the call's failure (its reservation would be held until the reaper)."""
    try:
        reservations_outstanding.inc()
    except Exception:
        log.exception("could not count a reservation")


def reservation_settled() -> None:
    try:
        reservations_outstanding.dec()
    except Exception:
        log.exception("could not count a settlement")


_children: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _bind(key: tuple[Any, ...]) -> tuple[Any, ...]:
    route, model, provider, status, error_code, modality = key
    operation = OPERATION.get(modality, modality)
    genai = (operation, provider, model)
    bound = (
        requests.labels(route, model, provider, str(status), error_code),
        duration.labels(*genai, error_code or ("" if status < 400 else str(status))),
        time_to_first_token.labels(*genai),
        token_usage.labels(*genai, "input"),
        token_usage.labels(*genai, "output"),
        cost.labels(route, model, provider),
    )
    _children[key] = bound
    return bound


# An upstream's 4xx passes its own error code on, so the codes are not City's to bound: past this
# many distinct ones in a process, the rest are labelled "other" (each label set is a series kept forever).
MOST_ERROR_TYPES = 64
_error_types: set[str] = set()


def error_type(code: str) -> str:
    if not code or code in _error_types:
        return code
    if len(_error_types) < MOST_ERROR_TYPES:
        _error_types.add(code)
        return code
    return "other"


def observe_call(record: dict[str, Any]) -> None:
    """One finished AI call, from its usage record."""
    key = (record["route"], record["model"], record["provider"], record["status"], error_type(record["error_code"]), record["modality"])
    calls, seconds, ttft, input_tokens, output_tokens, spent = _children.get(key) or _bind(key)
    calls.inc()
    seconds.observe(record["latency_ms"] / 1000)
    if record["ttft_ms"] is not None:
        ttft.observe(record["ttft_ms"] / 1000)
    if record["prompt_tokens"] or record["completion_tokens"]:
        input_tokens.observe(record["prompt_tokens"])
        output_tokens.observe(record["completion_tokens"])
    if record["cost"]:
        spent.inc(record["cost"] * PICO)


_upstream_error = cached_labels(upstream_errors)
_failover = cached_labels(failovers)
_refusal = cached_labels(refusals)


def upstream_error(provider: str, status: int) -> None:
    _upstream_error(provider, str(status)).inc()


def failover(provider: str) -> None:
    _failover(provider).inc()


def refusal(status: int, code: str) -> None:
    _refusal(str(status), code).inc()
