"""Optional OpenTelemetry traces: one span per AI call, sent over OTLP/HTTP. Off unless
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set (settings.CITY_OTLP_TRACES).

The span is made from the finished usage record (AiCall.settle), with its real start time and the
attributes of OpenTelemetry's GenAI conventions (gen_ai.operation.name, gen_ai.provider.name,
gen_ai.request.model, gen_ai.response.model, gen_ai.usage.input_tokens / output_tokens, error.type)
plus City's (the route, the HTTP status, the request id). Prompts and answers are never put on it.

The SDK is imported only when tracing is on, so the default path pays nothing; when on, a span costs
a few microseconds on the event loop and its export runs on the BatchSpanProcessor's thread. The
exporter reads the SDK's standard variables (endpoint, OTEL_EXPORTER_OTLP_HEADERS, timeout), and
OTEL_SERVICE_NAME names the service ("city" by default). Each process has its own provider, made at
its first span (uvicorn's workers are spawned, not forked, so no exporter thread is shared).
"""

import os
import threading
from typing import Any

from django.conf import settings

from aihub.metrics import OPERATION

ENABLED: bool = settings.CITY_OTLP_TRACES

_tracer: Any = None
_provider: Any = None
_lock = threading.Lock()


def tracer() -> Any:
    global _tracer
    if _tracer is None:
        with _lock:
            if _tracer is None:
                _tracer = _new_tracer()
    return _tracer


def _new_tracer() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    global _provider
    _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "city")}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return _provider.get_tracer("city.aihub")


def record_span(record: dict[str, Any]) -> None:
    """The span of one finished call (its start: the record's created_at)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    operation = OPERATION.get(record["modality"], record["modality"])
    status = record["status"]
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": record["provider"],
        "gen_ai.request.model": record["model"],
        "gen_ai.response.model": record["deployment"],
        "gen_ai.usage.input_tokens": record["prompt_tokens"],
        "gen_ai.usage.output_tokens": record["completion_tokens"],
        "http.response.status_code": status,
        "city.route": record["route"],
        "city.request_id": record["request_id"],
        "city.streamed": record["streamed"],
        "city.cost_usd": record["cost"] * 1e-12,
    }
    if record["ttft_ms"] is not None:
        attributes["city.time_to_first_token_ms"] = record["ttft_ms"]
    if status >= 400 or status == 0:
        attributes["error.type"] = record["error_code"] or str(status)
    start_ns = int(record["created_at"].timestamp() * 1e9)
    span = tracer().start_span(f"{operation} {record['model']}", kind=SpanKind.CLIENT, start_time=start_ns, attributes=attributes)
    if status >= 400 or status == 0:
        span.set_status(Status(StatusCode.ERROR, record["error_code"] or None))
    span.end(end_time=start_ns + record["latency_ms"] * 1_000_000)


def flush(timeout_ms: int = 5000) -> bool:
    """Export what is queued now (tests; a process exiting flushes by itself)."""
    return _provider is None or bool(_provider.force_flush(timeout_ms))
