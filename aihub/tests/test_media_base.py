"""The shared parts every media route stands on: unit prices, the meter's cost in units, the upload
body limit and multipart forms as the OpenAI SDKs send them."""

import asyncio
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from aihub.catalog_types import IMAGE, IMAGES, Deployment, Model, usd, usd_per_unit
from aihub.estimate import worst_media
from aihub.metering import Meter
from city.bodylimit import BodyLimitMiddleware
from city.dispatch import read_form

IMAGE_MODEL = Model(
    "test-image",
    "Test image model",
    (Deployment("openai", "openai", "test-image", "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),),
    modalities=(IMAGE,),
    input_price=usd("5"),
    unit=IMAGES,
    unit_price=usd_per_unit("0.04"),
    unit_prices={"hd/1024x1024": usd_per_unit("0.08")},
)


def test_a_unit_price_is_exact_in_micro_usd_per_million_units() -> None:
    assert usd_per_unit("0.04") == 40_000_000_000
    assert usd_per_unit("0.000015") == 15_000_000  # $15 per million characters
    meta = IMAGE_MODEL.public_meta()["price"]
    assert meta["per_image"] == "0.04"
    assert meta["per_image_by_variant"] == {"hd/1024x1024": "0.08"}


def test_worst_media_prices_the_variant_and_rounds_up_once() -> None:
    worst = worst_media(IMAGE_MODEL, 3, IMAGE_MODEL.unit_prices["hd/1024x1024"], input_tokens=7)
    # 3 × $0.08 + 7 tokens × $5/M = $0.240035 → 240,035 micro-USD
    assert (worst.units, worst.unit_price, worst.cost) == (3, 80_000_000_000, 240_035)
    assert worst_media(IMAGE_MODEL, 1).unit_price == IMAGE_MODEL.unit_price


def test_the_meter_bills_units_at_their_price_and_says_the_unit() -> None:
    call: Any = type("FakeCall", (), {"identity": type("I", (), {"token_id": None, "account_id": None})(), "request_id": "r"})()
    call.action = type("A", (), {"name": "image"})()
    meter = Meter(call, "studio_x", IMAGE_MODEL, "image", ceiling=(7, 0), unit_price=usd_per_unit("0.08"), worst_units=3)
    meter.units = 2
    record = meter.record(200)
    assert (record["unit"], record["units"], record["cost"]) == ("images", 2, 2 * 80_000_000_000)
    worst = meter.record(0, "interrupted", at_worst=True)
    assert (worst["units"], worst["cost"]) == (3, 3 * 80_000_000_000 + 7 * IMAGE_MODEL.input_price)
    meter.units = 0
    meter.estimate_worst()  # a timeout mid-call: the model may have made all it was asked for
    assert meter.units == 3


async def _app(scope: Any, receive: Any, send: Any) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _post(middleware: BodyLimitMiddleware, path: str, body: bytes, *, declared: bool, chunk: int = 1000) -> tuple[int, bytes]:
    headers = [(b"content-length", str(len(body)).encode())] if declared else []
    scope = {"type": "http", "path": path, "headers": headers}
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("declared", [True, False])
def test_upload_routes_get_the_larger_limit_and_only_they(declared: bool) -> None:
    middleware = BodyLimitMiddleware(_app, 100, 1000, lambda scope: scope["path"] == "/v1/ai/asr")
    assert _post(middleware, "/v1/ai/asr", b"x" * 900, declared=declared, chunk=60) == (200, b"900")
    status, body = _post(middleware, "/v1/ai/asr", b"x" * 1001, declared=declared, chunk=60)
    assert status == 413 and b"1000 bytes (CITY_MAX_UPLOAD_BYTES)" in body
    status, body = _post(middleware, "/v1/ai/text", b"x" * 101, declared=declared, chunk=60)
    assert status == 413 and b"100 bytes (CITY_MAX_BODY_BYTES)" in body
    assert _post(middleware, "/v1/ai/text", b"x" * 100, declared=declared, chunk=60) == (200, b"100")


def test_a_multipart_form_reads_as_the_openai_sdk_sends_it() -> None:
    audio = SimpleUploadedFile("talk.mp3", b"ID3 fake", content_type="audio/mpeg")
    request = RequestFactory().post(
        "/v1/ai/audio/transcriptions",
        {"model": "whisper-1", "timestamp_granularities[]": ["word", "segment"], "include[]": "logprobs", "file": audio},
    )
    data, files = asyncio.run(read_form(request))
    assert data == {"model": "whisper-1", "timestamp_granularities": ["word", "segment"], "include": ["logprobs"]}
    assert list(files) == ["file"] and files["file"][0].read() == b"ID3 fake"


def test_a_deployment_without_the_operation_fails_over_then_names_the_model() -> None:
    from aihub.adapters.base import Upstream, UpstreamError
    from aihub.attempts import first_success

    call: Any = type("FakeCall", (), {"identity": None, "request_id": "r"})()
    meter = Meter(call, "studio_x", IMAGE_MODEL, "image", ceiling=(0, 0))
    deepgram = Upstream("deepgram", "deepgram", "nova-3", "http://127.0.0.1:1", None)
    openai = Upstream("openai", "openai", "test-image", "http://127.0.0.1:2", None)
    asked: list[str] = []

    async def attempt(upstream: Upstream) -> dict[str, Any]:
        asked.append(upstream.provider)
        if upstream.adapter == "deepgram":
            raise NotImplementedError
        return {"created": 1}

    assert asyncio.run(first_success([deepgram, openai], attempt, meter)) == {"created": 1}
    assert asked == ["deepgram", "openai"] and meter.provider == "openai"
    with pytest.raises(UpstreamError) as refused:
        asyncio.run(first_success([deepgram], attempt, meter))
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "unsupported_model", "model")
    assert "test-image" in refused.value.message and "deepgram" in refused.value.message
