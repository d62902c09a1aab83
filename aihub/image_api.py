"""Images: POST /v1/ai/image (City's parts), /v1/ai/images/generations and images/edits (OpenAI's, also
at /v1/images/…), and GET /v1/ai/image/result (images kept for a client that left).

City's answer: `{id: "img_…", model, parts: [{type: "image", data (base64) | url, mime,
revised_prompt?}], usage: {images, input_tokens?, output_tokens?}}`; OpenAI's routes answer OpenAI's
images response. Every call goes through the AI pipeline (aihub/pipeline.py): plans, caps, limits and
a reservation of the worst case (images × n, or their tokens), then a usage record in images. A
client that leaves mid-call is still billed for what the upstream made, and the images are kept
(aihub/image_results.py) for pickup by the call's request id.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponseBase

from aihub import image_results
from aihub.adapters import adapter_for
from aihub.adapters.base import MediaFile, Upstream
from aihub.catalog import models_by_id
from aihub.catalog_images import RULES, ImageRules
from aihub.catalog_types import IMAGE, Model
from aihub.image_requests import (
    CITY_FIELDS,
    EDIT_FIELDS,
    EDIT_FILES,
    GENERATION_FIELDS,
    ImageInput,
    Pricing,
    Upload,
    at_most,
    bill,
    check,
    check_sizes,
    check_uploads,
    images_made,
    pricing,
    usage_shown,
)
from aihub.pipeline import AiCall, admit
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id
from city.registry import Action

CITY_IMAGE = ImageInput(
    "ImageRequest",
    CITY_FIELDS,
    "City's image request; the answer's parts carry the images as base64 `data` (or `url`, with response_format url where the model gives URLs).",
)
GENERATIONS = ImageInput("CreateImageRequest", GENERATION_FIELDS, "OpenAI's images/generations request.")
EDITS = ImageInput(
    "CreateImageEditRequest",
    EDIT_FIELDS,
    "OpenAI's images/edits request, as multipart/form-data: the fields, and the files `image` (or `image[]`, up to 16) and `mask`.",
)


class ResultInput:
    """GET /v1/ai/image/result's query: the request id of the call (and, for the admin, the studio)."""

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        for name in data:
            if name not in ("request_id", "studio_id"):
                raise ApiError(400, f"{name} is not a parameter of this route; it takes request_id.", param=name, code="unknown_field")
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id or len(request_id) > 200:
            raise ApiError(400, "request_id is required: the X-Request-Id of the image call.", param="request_id", code="missing_field")
        return dict(data)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"request_id": {"type": "string", "maxLength": 200}, "studio_id": {"type": "string"}},
            "required": ["request_id"],
            "additionalProperties": False,
        }


def _rules(data: dict[str, Any]) -> tuple[Model | None, ImageRules | None]:
    model_id = data.get("model")
    model = models_by_id().get(model_id) if isinstance(model_id, str) else None
    return model, RULES.get(model.id) if model is not None else None


def upstream_body(data: dict[str, Any]) -> dict[str, Any]:
    """The request for the adapter: City's own field left out, `response_format` where the model
    refuses it (the GPT image models always answer base64), and DALL·E 3's `quality: auto` sent as
    `standard`, the quality City reserved and bills ("auto" lets OpenAI choose, possibly hd at twice
    the price, and DALL·E's answer does not say which it made)."""
    _, rules = _rules(data)
    dropped = {"studio_id", "response_format"} if rules is not None and rules.family == "gpt-image" else {"studio_id"}
    body = {key: value for key, value in data.items() if key not in dropped}
    if rules is not None and rules.family == "dall-e" and body.get("quality") == "auto":
        body["quality"] = "standard"
    return body


async def _run(
    call: Call,
    body: dict[str, Any],
    attempt: Callable[[Upstream], Awaitable[dict[str, Any]]],
    *,
    input_images: int,
    edit: bool,
    answer_of: Callable[[AiCall, dict[str, Any], str], dict[str, Any]],
) -> HttpResponseBase:
    """The pipeline around one image call; `answer_of(ai, upstream_answer, answer_id)` shapes the reply."""
    _, rules = _rules(body)
    price: list[Pricing] = []

    def worst_of(admitted: Model) -> Any:
        assert rules is not None  # admit refuses a model without IMAGE before asking its worst case
        price.append(pricing(admitted, rules, body, input_images))
        return price[0].worst

    ai = await admit(call, body.get("model"), (IMAGE,), "image", worst_of)
    answer_id = new_id("img")

    async def orphaned(answer: dict[str, Any]) -> None:
        bill(ai.meter, ai.model, price[0], answer, edit=edit)
        await image_results.akeep(
            request_id=call.request_id,
            studio_id=ai.meter.studio_id,
            call_id=ai.meter.call_id,
            model=ai.model.id,
            answer_id=answer_id,
            parts=city_parts(answer, body),
            usage=usage_shown(ai.meter, answer),
        )

    async def asked_for(up: Upstream) -> dict[str, Any]:
        return at_most(await attempt(up), price[0].worst.units)

    async with ai:
        answer = await ai.answer_kept(asked_for, orphaned)
        bill(ai.meter, ai.model, price[0], answer, edit=edit)
        return await ai.respond(answer_of(ai, answer, answer_id))


def _checked(data: dict[str, Any], *, edit: bool = False) -> None:
    model, rules = _rules(data)
    if model is not None and rules is not None:
        check(model, rules, data, edit=edit)


async def _generate(up: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    return await adapter_for(up).images(up, body)


def city_parts(answer: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    fmt = answer.get("output_format") or body.get("output_format") or "png"
    mime = f"image/{fmt}" if fmt in ("png", "jpeg", "webp") else "image/png"
    parts = []
    for item in images_made(answer):
        part: dict[str, Any] = {"type": "image"}
        if item.get("b64_json"):
            part["data"] = item["b64_json"]
        else:
            part["url"] = item["url"]
        part["mime"] = mime
        if isinstance(item.get("revised_prompt"), str):
            part["revised_prompt"] = item["revised_prompt"]
        parts.append(part)
    return parts


def _city_answer(ai: AiCall, answer: dict[str, Any], answer_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": answer_id, "model": ai.model.id, "parts": city_parts(answer, body), "usage": usage_shown(ai.meter, answer)}


def _openai_answer(ai: AiCall, answer: dict[str, Any], answer_id: str) -> dict[str, Any]:
    return answer


async def image(call: Call) -> HttpResponseBase:
    """POST /v1/ai/image: City's image request → parts."""
    _checked(call.data)
    body = upstream_body(call.data)
    _, rules = _rules(body)
    if rules is not None and "url" in rules.response_formats:
        body.setdefault("response_format", "b64_json")  # City's parts carry data unless asked for URLs
    return await _run(
        call,
        body,
        lambda up: _generate(up, body),
        input_images=0,
        edit=False,
        answer_of=lambda ai, answer, answer_id: _city_answer(ai, answer, answer_id, body),
    )


async def generations(call: Call) -> HttpResponseBase:
    """POST /v1/ai/images/generations (and /v1/images/generations): OpenAI's images API."""
    _checked(call.data)
    body = upstream_body(call.data)
    return await _run(call, call.data, lambda up: _generate(up, body), input_images=0, edit=False, answer_of=_openai_answer)


async def edits(call: Call) -> HttpResponseBase:
    """POST /v1/ai/images/edits (and /v1/images/edits): OpenAI's image edits, multipart as the SDKs send it."""
    _checked(call.data, edit=True)
    for name in call.files:
        if name not in EDIT_FILES:
            raise ApiError(
                400, f"{name} is not a file this route takes; it takes image (or image[]) and mask.", param=name, code="unknown_field"
            )
    model, rules = _rules(call.data)
    images: list[MediaFile] = []
    mask: MediaFile | None = None
    if model is not None and rules is not None:
        images, mask = await edit_files(call.files, model, rules)
    body = upstream_body(call.data)

    async def attempt(up: Upstream) -> dict[str, Any]:
        return await adapter_for(up).image_edit(up, body, images, mask)

    return await _run(call, call.data, attempt, input_images=len(images), edit=True, answer_of=_openai_answer)


async def edit_files(
    files: Mapping[str, Sequence[UploadedFile]], model: Model, rules: ImageRules
) -> tuple[list[MediaFile], MediaFile | None]:
    """The edit's files, checked: their count and sizes before a byte is read (Django has spooled large
    ones to disk), then read on a worker thread and typed by their content."""
    found = [(name, upload) for name in EDIT_FILES for upload in files.get(name, [])]
    check_sizes(model, rules, [Upload(name, upload.name or name, upload.size or 0, b"") for name, upload in found])

    def read(upload: UploadedFile) -> bytes:
        upload.seek(0)
        return upload.read()

    uploads = await sync_to_async(lambda: [Upload(name, upload.name or name, upload.size or 0, read(upload)) for name, upload in found])()
    return check_uploads(model, rules, uploads)


async def result(call: Call) -> Any:
    """GET /v1/ai/image/result?request_id=…: the images of a call whose client left, in City's shape."""
    studio_id = call.studio_id()
    return await sync_to_async(image_results.pickup)(studio_id, call.data["request_id"])


_USER = ("user",)

ACTIONS: tuple[Action, ...] = (
    Action(
        "image",
        image,
        methods=("POST",),
        allow=_USER,
        input=CITY_IMAGE,
        description="Make images from a prompt: parts of base64 data (or URLs), billed per image or by tokens as the model is priced.",
    ),
    Action(
        "image/result",
        result,
        methods=("GET",),
        allow=_USER,
        input=ResultInput(),
        description="The images of a call whose client left before its answer, by its X-Request-Id; kept CITY_MEDIA_RETENTION_HOURS.",
    ),
    Action(
        "images/generations",
        generations,
        methods=("POST",),
        allow=_USER,
        input=GENERATIONS,
        description="OpenAI's images/generations: gpt-image-1.5, gpt-image-1, dall-e-3, Imagen 4 and Gemini image models behind one API.",
    ),
    Action(
        "images/edits",
        edits,
        methods=("POST",),
        allow=_USER,
        input=EDITS,
        upload=True,
        description="OpenAI's images/edits (multipart/form-data): edit or combine up to 16 images, with an optional mask.",
    ),
)
ALIASES: dict[str, str] = {"images/generations": "images/generations", "images/edits": "images/edits"}
