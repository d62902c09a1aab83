"""Image requests in process: the catalog's prices, what each model takes, the files an edit sends,
the worst case reserved and the usage billed, Google's translation, and the kept results' life."""

import asyncio
import base64
import struct
import zlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.utils import timezone

from aihub import image_results
from aihub.adapters import gemini_images
from aihub.adapters.base import Upstream
from aihub.catalog import models_by_id
from aihub.catalog_images import MODELS, RULES, aspect_ratio
from aihub.catalog_types import IMAGE, IMAGES, usd, usd_per_unit
from aihub.estimate import count_tokens, rough_counting
from aihub.image_api import CITY_IMAGE, EDITS, GENERATIONS, edit_files, upstream_body
from aihub.image_requests import Upload, at_most, bill, check, check_uploads, pricing
from aihub.metering import Meter
from aihub.models_images import KeptImages
from aihub.pipeline import AiCall
from aihub.tests.upstream.openai_images_sim import PNG, tiny_png
from city.errors import ApiError

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8


def model(model_id: str) -> Any:
    return models_by_id()[model_id]


def refused(status: int, param: str, code: str | None = None) -> Any:
    class Refusal:
        def __enter__(self) -> None:
            return None

        def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
            assert isinstance(exc, ApiError), f"expected ApiError({status}, {param}), got {exc!r}"
            assert (exc.status, exc.param) == (status, param), (exc.status, exc.param, exc.message)
            assert code is None or exc.code == code, exc.code
            return True

    return Refusal()


def test_the_catalog_lists_real_models_with_their_list_prices() -> None:
    ids = {m.id for m in MODELS}
    assert ids == set(RULES)
    assert {"gpt-image-1", "gpt-image-1-mini", "dall-e-3", "imagen-4.0-generate-001", "gemini-2.5-flash-image"} <= ids
    for m in MODELS:
        assert (m.modalities, m.default_modes, m.unit) == ((IMAGE,), (IMAGE,), IMAGES)
    gpt = model("gpt-image-1")
    assert (gpt.input_price, gpt.output_price, gpt.unit_price) == (usd("5"), usd("40"), 0)
    assert (model("gpt-image-1-mini").input_price, model("gpt-image-1-mini").output_price) == (usd("2"), usd("8"))
    dalle = model("dall-e-3")
    assert dalle.unit_prices["hd/1792x1024"] == usd_per_unit("0.12") == 120_000_000_000
    assert dalle.public_meta()["price"]["per_image_by_variant"]["standard/1024x1792"] == "0.08"
    assert model("imagen-4.0-fast-generate-001").public_meta()["price"]["per_image"] == "0.02"
    assert model("gemini-2.5-flash-image").output_price == usd("30")
    current = model("gpt-image-1.5")  # OpenAI's per-image list prices are its token table at $32/M
    assert (current.input_price, current.output_price) == (usd("5"), usd("32"))
    for quality, listed in (("low", "0.009"), ("medium", "0.034"), ("high", "0.133")):
        worst = pricing(current, RULES[current.id], {"prompt": "p", "quality": quality, "size": "1024x1024"}).worst
        assert round(Decimal(worst.output_tokens * current.output_price) / 10**12, 3) == Decimal(listed)


def test_the_input_specs_refuse_unknown_fields_and_coerce_form_strings() -> None:
    with refused(400, "colour", "unknown_field"):
        GENERATIONS.validate({"model": "gpt-image-1", "prompt": "a cat", "colour": "red"})
    with refused(400, "moderation", "unknown_field"):  # OpenAI's edits take no moderation
        EDITS.validate({"model": "gpt-image-1", "prompt": "a cat", "moderation": "low"})
    with refused(400, "prompt", "missing_field"):
        CITY_IMAGE.validate({"model": "gpt-image-1"})
    with refused(400, "n", "invalid_type"):
        EDITS.validate({"model": "gpt-image-1", "prompt": "a cat", "n": "two"})
    for bad in ("²", "1e3", "99999999999999999999"):  # a digit int() refuses, and a number no route takes
        with refused(400, "n", "invalid_type"):
            EDITS.validate({"model": "gpt-image-1", "prompt": "a cat", "n": bad})
    with refused(400, "stream", "unsupported_parameter"):
        GENERATIONS.validate({"model": "gpt-image-1", "prompt": "a cat", "stream": True})
    assert EDITS.validate({"model": "gpt-image-1", "prompt": "a cat", "n": "3", "output_compression": "80", "stream": "false"}) == {
        "model": "gpt-image-1",
        "prompt": "a cat",
        "n": 3,
        "output_compression": 80,
    }
    assert GENERATIONS.json_schema()["additionalProperties"] is False


def test_each_model_takes_its_own_values_and_names_the_field_it_does_not() -> None:
    gpt, dalle, imagen, flash = (model(m) for m in ("gpt-image-1", "dall-e-3", "imagen-4.0-ultra-generate-001", "gemini-2.5-flash-image"))
    base = {"model": "x", "prompt": "a lighthouse"}
    check(
        gpt, RULES[gpt.id], {**base, "n": 10, "size": "1536x1024", "quality": "low", "background": "transparent", "output_format": "webp"}
    )
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (gpt, {"size": "1792x1024"}, "size"),
        (gpt, {"quality": "hd"}, "quality"),
        (gpt, {"n": 11}, "n"),
        (gpt, {"n": 0}, "n"),
        (gpt, {"style": "vivid"}, "style"),
        (gpt, {"output_compression": 101}, "output_compression"),
        (gpt, {"background": "transparent", "output_format": "jpeg"}, "background"),
        (gpt, {"prompt": "x" * 32_001}, "prompt"),
        (dalle, {"n": 2}, "n"),
        (dalle, {"prompt": "x" * 4_001}, "prompt"),
        (dalle, {"size": "1536x1024"}, "size"),
        (dalle, {"background": "opaque"}, "background"),
        (dalle, {"style": "loud"}, "style"),
        (imagen, {"n": 2}, "n"),  # Ultra makes one image a request
        (imagen, {"size": "1536x1024"}, "size"),  # 3:2 is no Imagen aspect ratio
        (imagen, {"response_format": "url"}, "response_format"),
        (imagen, {"person_generation": "everyone"}, "person_generation"),
        (flash, {"quality": "high"}, "quality"),
    ]
    for m, extra, param in cases:
        with refused(400, param):
            check(m, RULES[m.id], {**base, **extra})
    with refused(400, "model", "unsupported_model"):
        check(dalle, RULES[dalle.id], base, edit=True)
    with refused(400, "model", "unsupported_model"):
        check(imagen, RULES[imagen.id], base, edit=True)


def test_an_edits_files_are_checked_for_count_size_and_type() -> None:
    gpt, flash = model("gpt-image-1"), model("gemini-2.5-flash-image")
    rules = RULES[gpt.id]
    images, mask = check_uploads(
        gpt, rules, [Upload("image", "a.png", len(PNG), PNG), Upload("image", "b.jpg", 24, JPEG), Upload("mask", "m.png", len(PNG), PNG)]
    )
    assert [(f.name, f.content_type) for f in images] == [("a.png", "image/png"), ("b.jpg", "image/jpeg")]
    assert mask is not None and mask.content_type == "image/png"
    assert check_uploads(gpt, rules, [Upload("image", "c.webp", len(WEBP), WEBP)])[0][0].content_type == "image/webp"
    with pytest.raises(ApiError, match=r"over the 50 MB limit of 'gpt-image-1' for each image") as too_big:
        check_uploads(gpt, rules, [Upload("image", "huge.png", 50_000_001, b"")])
    assert (too_big.value.status, too_big.value.param, too_big.value.code) == (413, "image", "file_too_large")
    with refused(400, "image", "unsupported_file_type"):
        check_uploads(gpt, rules, [Upload("image", "a.gif", 6, b"GIF89a")])
    with refused(400, "image", "too_many_files"):
        check_uploads(gpt, rules, [Upload("image", f"{i}.png", len(PNG), PNG) for i in range(17)])
    with refused(400, "image", "missing_field"):
        check_uploads(gpt, rules, [Upload("mask", "m.png", len(PNG), PNG)])
    with refused(400, "mask", "unsupported_file_type"):
        check_uploads(gpt, rules, [Upload("image", "a.png", len(PNG), PNG), Upload("mask", "m.jpg", 24, JPEG)])
    with refused(400, "mask", "unsupported_parameter"):
        check_uploads(flash, RULES[flash.id], [Upload("image", "a.png", len(PNG), PNG), Upload("mask", "m.png", len(PNG), PNG)])
    with refused(413, "image", "file_too_large"):  # Gemini: 20 MB for the whole request's inline data
        check_uploads(flash, RULES[flash.id], [Upload("image", f"{i}.png", 7_000_000, PNG) for i in range(3)])


class CountedUpload(SimpleUploadedFile):
    """An upload that counts its reads and claims the size it is given (as a spooled large one would)."""

    reads = 0

    def __init__(self, name: str, size: int) -> None:
        super().__init__(name, PNG, "image/png")
        self.size = size

    def read(self, *args: Any) -> bytes:
        CountedUpload.reads += 1
        return super().read(*args)


def test_an_edit_s_files_are_refused_by_count_and_size_before_any_is_read() -> None:
    flash = model("gemini-2.5-flash-image")
    CountedUpload.reads = 0
    three = {"image": [CountedUpload(f"{i}.png", 7_000_000) for i in range(3)]}  # each within 20 MB, not together
    with refused(413, "image", "file_too_large"):
        asyncio.run(edit_files(three, flash, RULES[flash.id]))
    many = {"image": [CountedUpload(f"{i}.png", len(PNG)) for i in range(17)]}
    with refused(400, "image", "too_many_files"):
        asyncio.run(edit_files(many, model("gpt-image-1"), RULES["gpt-image-1"]))
    assert CountedUpload.reads == 0
    images, mask = asyncio.run(edit_files({"image": [CountedUpload("a.png", len(PNG))]}, flash, RULES[flash.id]))
    assert ([f.data for f in images], mask, CountedUpload.reads) == ([PNG], None, 1)


def test_the_worst_case_is_openai_s_table_times_n_and_the_variant_s_price() -> None:
    gpt = model("gpt-image-1")
    worst = pricing(gpt, RULES[gpt.id], {"prompt": "a red fox", "quality": "medium", "size": "1024x1536", "n": 3}).worst
    assert (worst.units, worst.output_tokens, worst.unit_price) == (3, 1584 * 3, 0)
    assert worst.cost == -(-(worst.input_tokens * usd("5") + 1584 * 3 * usd("40")) // 1_000_000)
    auto = pricing(gpt, RULES[gpt.id], {"prompt": "a red fox"}).worst
    assert auto.output_tokens == 6240  # auto quality is high, auto size the largest
    edit = pricing(gpt, RULES[gpt.id], {"prompt": "a red fox", "size": "1024x1024", "quality": "low"}, input_images=2).worst
    assert edit.input_tokens == auto.input_tokens + 2 * 2 * 1445  # image input at $10/M: twice the text price
    dalle = model("dall-e-3")
    assert pricing(dalle, RULES[dalle.id], {"prompt": "p", "quality": "hd", "size": "1024x1792"}).worst.cost == 120_000
    assert pricing(dalle, RULES[dalle.id], {"prompt": "p"}).worst.cost == 40_000
    imagen = model("imagen-4.0-generate-001")
    assert pricing(imagen, RULES[imagen.id], {"prompt": "p", "n": 4}).worst.cost == 160_000
    flash = model("gemini-2.5-flash-image")
    assert pricing(flash, RULES[flash.id], {"prompt": "p"}).worst.output_tokens == 1290
    cjk = {"prompt": "一只在雪地里的红狐狸" * 20}  # a token a character or so, where the rough count takes four
    with rough_counting():  # admit's counting when no plan needs an exact one
        rough = pricing(gpt, RULES[gpt.id], cjk).worst
        assert pricing(flash, RULES[flash.id], cjk).worst.input_tokens == len(cjk["prompt"].encode())
    assert rough.input_tokens == len(cjk["prompt"].encode()) >= count_tokens(gpt, cjk["prompt"]) > (len(cjk["prompt"]) + 3) // 4


def _meter(model_id: str, worst: Any) -> Meter:
    call: Any = type("Call", (), {"identity": type("I", (), {"token_id": None, "account_id": None})(), "request_id": "r"})()
    call.action = type("A", (), {"name": "image"})()
    m = model(model_id)
    return Meter(
        call,
        "studio_x",
        m,
        "image",
        ceiling=(worst.input_tokens, worst.output_tokens),
        unit_price=worst.unit_price,
        worst_units=worst.units,
    )


def test_the_bill_takes_the_upstream_s_usage_with_image_input_at_its_own_price() -> None:
    mini = model("gpt-image-1-mini")
    price = pricing(mini, RULES[mini.id], {"prompt": "a red fox", "quality": "low", "size": "1024x1024", "n": 2}, input_images=1)
    meter = _meter(mini.id, price.worst)
    usage = {"input_tokens": 110, "output_tokens": 544, "input_tokens_details": {"text_tokens": 10, "image_tokens": 100}}
    bill(meter, mini, price, {"data": [{"b64_json": "x"}, {"b64_json": "y"}], "usage": usage}, edit=True)
    record = meter.record(200)
    # 10 text tokens at $2/M, 100 image tokens at $2.50/M (125 at the text price), 544 at $8/M
    assert (record["units"], record["prompt_tokens"], record["completion_tokens"]) == (2, 135, 544)
    assert record["cost"] == 135 * 2_000_000 + 544 * 8_000_000 == 10 * 2_000_000 + 100 * 2_500_000 + 544 * 8_000_000
    assert not record["usage_estimated"]
    unreported = _meter(mini.id, price.worst)
    bill(unreported, mini, price, {"data": [{"b64_json": "x"}]}, edit=True)  # one of two made, no usage
    record = unreported.record(200)
    assert (record["units"], record["completion_tokens"], record["prompt_tokens"], record["usage_estimated"]) == (
        1,
        272,
        price.worst.input_tokens,
        True,
    )
    dalle = model("dall-e-3")
    dprice = pricing(dalle, RULES[dalle.id], {"prompt": "p", "quality": "hd", "size": "1792x1024"})
    dmeter = _meter(dalle.id, dprice.worst)
    bill(dmeter, dalle, dprice, {"data": [{"url": "https://x/y.png"}]}, edit=False)
    assert (dmeter.record(200)["units"], dmeter.record(200)["cost"]) == (1, 120_000_000_000)
    # gpt-image-1.5: image input at $8/M is 8/5 of its $5/M text input (160 text-price tokens for 100)
    current = model("gpt-image-1.5")
    cprice = pricing(current, RULES[current.id], {"prompt": "a red fox", "quality": "low", "size": "1024x1024"}, input_images=1)
    cmeter = _meter(current.id, cprice.worst)
    cusage = {"input_tokens": 110, "output_tokens": 272, "input_tokens_details": {"text_tokens": 10, "image_tokens": 100}}
    bill(cmeter, current, cprice, {"data": [{"b64_json": "x"}], "usage": cusage}, edit=True)
    assert cmeter.record(200)["cost"] == 10 * 5_000_000 + 100 * 8_000_000 + 272 * 32_000_000


def test_the_bill_never_passes_the_reservation_when_the_upstream_reports_more() -> None:
    gpt = model("gpt-image-1")
    price = pricing(gpt, RULES[gpt.id], {"prompt": "a red fox", "quality": "low", "size": "1024x1024"}, input_images=1)
    meter = _meter(gpt.id, price.worst)
    # a huge input image at high fidelity, and more output than OpenAI's table gives
    usage = {"input_tokens": 50_000, "output_tokens": 9_000, "input_tokens_details": {"text_tokens": 5, "image_tokens": 49_995}}
    bill(meter, gpt, price, {"data": [{"b64_json": "x"}], "usage": usage}, edit=True)
    record = meter.record(200)
    assert (record["prompt_tokens"], record["completion_tokens"]) == (price.worst.input_tokens, price.worst.output_tokens)
    assert record["cost"] <= price.worst.cost * 1_000_000
    auto = pricing(gpt, RULES[gpt.id], {"prompt": "a red fox"})  # auto: reserved at high quality, the largest size
    ameter = _meter(gpt.id, auto.worst)
    over_in = {"input_tokens": auto.worst.input_tokens + 7, "output_tokens": 4160}  # a few more input tokens, less output
    bill(ameter, gpt, auto, {"data": [{"b64_json": "x"}], "usage": over_in}, edit=False)
    assert (ameter.prompt_tokens, ameter.completion_tokens) == (auto.worst.input_tokens + 7, 4160)  # within it: as reported
    flash = model("gemini-2.5-flash-image")
    fprice = pricing(flash, RULES[flash.id], {"prompt": "two cats"})
    fmeter = _meter(flash.id, fprice.worst)
    two = {"data": [{"b64_json": "x"}, {"b64_json": "y"}], "usage": {"input_tokens": 3, "output_tokens": 2 * 1290 + 40}}
    bill(fmeter, flash, fprice, two, edit=False)  # Gemini made two images (and some text) for n=1
    record = fmeter.record(200)
    assert (record["units"], record["completion_tokens"]) == (1, 1290)
    assert record["cost"] <= fprice.worst.cost * 1_000_000
    assert at_most(two, 1)["data"] == [{"b64_json": "x"}] and len(two["data"]) == 2  # the answer carries what is billed
    imagen = model("imagen-4.0-generate-001")
    iprice = pricing(imagen, RULES[imagen.id], {"prompt": "p", "n": 2})
    imeter = _meter(imagen.id, iprice.worst)
    bill(imeter, imagen, iprice, {"data": [{"b64_json": "x"}] * 3}, edit=False)
    assert (imeter.record(200)["units"], imeter.record(200)["cost"]) == (2, iprice.worst.cost * 1_000_000)


def test_an_answer_that_lands_as_its_client_leaves_is_billed_and_kept() -> None:
    """The upstream's answer and the client's leaving in the same turn of the loop: the images were
    made (and billed to City), so they are billed and kept, not settled as nothing."""
    gpt = model("gpt-image-1")
    price = pricing(gpt, RULES[gpt.id], {"prompt": "a fox", "quality": "low", "size": "1024x1024"})
    meter = _meter(gpt.id, price.worst)
    records: list[dict[str, Any]] = []
    meter.on_finish = records.append
    upstream = Upstream("openai", "openai", "gpt-image-1", "http://127.0.0.1:9", None)
    ai = AiCall(model=gpt, upstreams=[upstream], meter=meter, headers={})
    answer = {"data": [{"b64_json": "x"}], "usage": {"input_tokens": 2, "output_tokens": 272}}
    kept: list[dict[str, Any]] = []

    async def orphaned(made: dict[str, Any]) -> None:
        bill(meter, gpt, price, made, edit=False)
        kept.append(made)

    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def attempt(up: Any) -> dict[str, Any]:
            await gate
            return answer

        async def handler() -> None:
            async with ai:
                await ai.answer_kept(attempt, orphaned)

        task = asyncio.ensure_future(handler())
        await asyncio.sleep(0)  # the handler waits on the upstream
        gate.set_result(None)  # the upstream answers …
        task.cancel()  # … as the client leaves
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(5):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert kept == [answer]
    assert [(r["status"], r["units"], r["completion_tokens"]) for r in records] == [(499, 1, 272)]


def test_gpt_image_requests_go_without_response_format_and_city_s_fields() -> None:
    assert upstream_body({"model": "gpt-image-1", "prompt": "p", "response_format": "b64_json", "studio_id": "s"}) == {
        "model": "gpt-image-1",
        "prompt": "p",
    }
    assert upstream_body({"model": "dall-e-3", "prompt": "p", "response_format": "url"})["response_format"] == "url"
    assert upstream_body({"model": "dall-e-3", "prompt": "p", "quality": "auto"})["quality"] == "standard"  # as reserved


def test_openai_sizes_map_to_google_s_aspect_ratios_or_none() -> None:
    assert aspect_ratio("imagen-4.0-generate-001", "1792x1024") == ("16:9", "")
    assert aspect_ratio("imagen-4.0-generate-001", "2048x2048") == ("1:1", "2K")
    assert aspect_ratio("imagen-4.0-fast-generate-001", "2048x2048") is None  # Fast makes 1K only
    assert aspect_ratio("imagen-4.0-generate-001", "1536x1024") is None
    assert aspect_ratio("gemini-2.5-flash-image", "1536x1024") == ("3:2", "")
    assert aspect_ratio("gemini-2.5-flash-image", "auto") == ("", "")
    usage = gemini_images.usage_of(
        {
            "promptTokenCount": 270,
            "candidatesTokenCount": 1290,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}, {"modality": "IMAGE", "tokenCount": 258}],
        }
    )
    assert usage == {
        "input_tokens": 270,
        "output_tokens": 1290,
        "total_tokens": 1560,
        "input_tokens_details": {"text_tokens": 12, "image_tokens": 258},
    }


def test_the_simulator_s_png_is_a_real_png() -> None:
    png = tiny_png(1, 2, 3, size=4)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    at = png.index(b"IDAT")
    length = struct.unpack(">I", png[at - 4 : at])[0]
    assert zlib.decompress(png[at + 4 : at + 4 + length]) == (b"\x00" + bytes((1, 2, 3)) * 4) * 4  # 4 rows, filter 0


class KeptImagesTests(TestCase):
    def test_kept_images_are_picked_up_by_their_studio_until_they_expire_then_purged(self) -> None:
        data = base64.b64encode(PNG).decode()
        kept = image_results.keep(
            request_id="req-left/../x",
            studio_id="studio_a",
            call_id="call_1",
            model="gpt-image-1",
            answer_id="img_1",
            parts=[{"type": "image", "data": data, "mime": "image/png"}, {"type": "image", "url": "https://x/y.png", "mime": "image/png"}],
            usage={"images": 2},
        )
        path = kept.files[0]["path"]
        assert path.startswith("media/images/studio_a/req-left____x/") and default_storage.exists(path)
        answer = image_results.pickup("studio_a", "req-left/../x")
        assert answer["id"] == "img_1" and answer["parts"][0]["data"] == data and answer["parts"][1]["url"] == "https://x/y.png"
        with self.assertRaises(ApiError) as other:
            image_results.pickup("studio_b", "req-left/../x")
        self.assertEqual((other.exception.status, other.exception.param), (404, "request_id"))
        later = kept.expires_at + timedelta(seconds=1)
        self.assertEqual(image_results.purge_expired(kept.expires_at - timedelta(seconds=1)), 0)
        KeptImages.objects.filter(pk=kept.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        with self.assertRaises(ApiError):
            image_results.pickup("studio_a", "req-left/../x")  # expired: gone, even before the purge
        self.assertEqual(image_results.purge_expired(later), 1)
        self.assertFalse(default_storage.exists(path))
        self.assertFalse(KeptImages.objects.exists())
