"""Google's images: Imagen (`:predict`) and Gemini's image output (`:generateContent`): the GeminiAdapter
methods of these names delegate here.

Imagen: `POST /v1beta/models/{model}:predict` with `{instances: [{prompt}], parameters: {sampleCount,
aspectRatio?, imageSize?, personGeneration?}}` → `{predictions: [{bytesBase64Encoded, mimeType}]}`.
Gemini: `:generateContent` with the prompt (and, for edits, each input image as an `inlineData`
part) and `generationConfig: {responseModalities: ["IMAGE"], imageConfig: {aspectRatio}}` → parts
with `inlineData {mimeType, data}`, and `usageMetadata`, given back as OpenAI's image usage
`{input_tokens, output_tokens, total_tokens, input_tokens_details: {text_tokens, image_tokens}}`.
OpenAI's `size` becomes the aspect ratio (aihub/catalog_images.py); the route has refused the sizes
that have none. Google makes no URLs: images come back as base64.
"""

import base64
import time
from typing import TYPE_CHECKING, Any

from aihub.adapters import gemini
from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import MediaFile, Upstream, UpstreamError
from aihub.catalog_images import aspect_ratio

if TYPE_CHECKING:
    from aihub.adapters.gemini import GeminiAdapter


async def images(adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    if gemini._model_name(upstream).startswith("imagen-"):
        return await _imagen(adapter, upstream, body)
    return await _generate(adapter, upstream, body, [])


async def image_edit(
    adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None
) -> dict[str, Any]:
    if gemini._model_name(upstream).startswith("imagen-"):
        raise NotImplementedError  # Imagen on the Gemini API makes images; it does not edit them
    if mask is not None:
        raise oa.invalid_request("Gemini edits images from the prompt alone; it takes no mask.", "mask")
    return await _generate(adapter, upstream, body, images)


def _ratio(upstream: Upstream, body: dict[str, Any]) -> tuple[str, str]:
    size = body.get("size") or ""
    found = aspect_ratio(gemini._model_name(upstream), size)
    if found is None:
        raise oa.invalid_request(f"size '{size}' has no aspect ratio this model makes.", "size")
    return found


async def _imagen(adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    ratio, image_size = _ratio(upstream, body)
    parameters: dict[str, Any] = {"sampleCount": body.get("n") or 1}  # Imagen's default is 4
    if ratio:
        parameters["aspectRatio"] = ratio
    if image_size:
        parameters["imageSize"] = image_size
    if body.get("person_generation"):
        parameters["personGeneration"] = body["person_generation"]
    payload = {"instances": [{"prompt": body.get("prompt") or ""}], "parameters": parameters}
    answer = await adapter._post(upstream, gemini._model_url(upstream, "predict"), payload)
    predictions = answer.get("predictions")
    made = (
        [p for p in predictions if isinstance(p, dict) and isinstance(p.get("bytesBase64Encoded"), str)]
        if isinstance(predictions, list)
        else []
    )
    if not made:
        raise _nothing_made()
    return {
        "created": int(time.time()),
        "data": [{"b64_json": p["bytesBase64Encoded"]} for p in made],
        "output_format": _format_of(made[0].get("mimeType")),
    }


async def _generate(adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any], images: list[MediaFile]) -> dict[str, Any]:
    ratio, _ = _ratio(upstream, body)
    parts: list[dict[str, Any]] = [{"text": body.get("prompt") or ""}]
    parts += [{"inlineData": {"mimeType": image.content_type, "data": base64.b64encode(image.data).decode("ascii")}} for image in images]
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    if ratio:
        config["imageConfig"] = {"aspectRatio": ratio}
    payload = {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}
    answer = await adapter._post(upstream, gemini._model_url(upstream, "generateContent"), payload)
    made = []
    for candidate in answer.get("candidates") or ():
        for part in ((candidate or {}).get("content") or {}).get("parts") or ():
            inline = part.get("inlineData") if isinstance(part, dict) else None
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                made.append(inline)
    if not made:
        raise _nothing_made()
    answer_shape: dict[str, Any] = {
        "created": int(time.time()),
        "data": [{"b64_json": inline["data"]} for inline in made],
        "output_format": _format_of(made[0].get("mimeType")),
    }
    metadata = answer.get("usageMetadata")
    if isinstance(metadata, dict):
        answer_shape["usage"] = usage_of(metadata)
    return answer_shape


def usage_of(metadata: dict[str, Any]) -> dict[str, Any]:
    """`usageMetadata` as OpenAI's image usage; thinking tokens are output, as Google bills them."""
    prompt = _count(metadata.get("promptTokenCount"))
    output = _count(metadata.get("candidatesTokenCount")) + _count(metadata.get("thoughtsTokenCount"))
    image_tokens = sum(
        _count(d.get("tokenCount"))
        for d in metadata.get("promptTokensDetails") or ()
        if isinstance(d, dict) and d.get("modality") == "IMAGE"
    )
    image_tokens = min(image_tokens, prompt)
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": prompt + output,
        "input_tokens_details": {"text_tokens": prompt - image_tokens, "image_tokens": image_tokens},
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _format_of(mime: Any) -> str:
    return {"image/jpeg": "jpeg", "image/webp": "webp"}.get(mime, "png") if isinstance(mime, str) else "png"


def _nothing_made() -> UpstreamError:
    # Google answers 200 with no image when its safety filters hold every one back: nothing is billed.
    return UpstreamError(
        "The provider made no image for this prompt (its safety filters may have held them back); change the prompt.",
        status=400,
        retryable=False,
        error_type="invalid_request_error",
        code="content_filtered",
        param="prompt",
    )
