"""Gemini images: Imagen `models/{model}:predict`, and image output of `:generateContent` models, mixed into the provider's simulator.

As Google's references state them (ai.google.dev/gemini-api/docs/imagen and /image-generation): an
`x-goog-api-key`; Imagen's `{instances: [{prompt}], parameters: {sampleCount 1–4 (Ultra: 1),
aspectRatio, imageSize (1K/2K, not on Fast), personGeneration}}` → `{predictions: [{bytesBase64Encoded,
mimeType}]}`; Gemini's image model with `generationConfig.responseModalities` holding "IMAGE" and an
optional `imageConfig.aspectRatio` → a candidate whose parts hold a text and an `inlineData` PNG, and
`usageMetadata` (1,290 output tokens an image; 258 input tokens an input image). Errors in Google's
shape `{"error": {"code", "message", "status"}}`. `image_prompt_blocked` makes the next answers hold
every image back, as Google's safety filters do (200, no image).
"""

from __future__ import annotations

import re
from typing import Any

from aihub.tests.upstream.openai_images_sim import PNG_B64
from aihub.tests.upstream.sim import Received, Reply

IMAGE_ROUTE = re.compile(r"^/v1beta/models/(?P<model>imagen-[^/:]+|[^/:]*-image[^/:]*):(?P<method>predict|generateContent)$")
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
OUTPUT_TOKENS_PER_IMAGE = 1290
INPUT_IMAGE_TOKENS = 258
STATUS_WORDS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


class _Invalid(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _error(problem: _Invalid) -> Reply:
    return Reply.json(
        {"error": {"code": problem.status, "message": problem.message, "status": STATUS_WORDS.get(problem.status, "INVALID_ARGUMENT")}},
        status=problem.status,
    )


class GeminiImagesRoutes:
    image_prompt_blocked = False

    def gemini_images_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        route = IMAGE_ROUTE.match(request.path)
        if request.method != "POST" or route is None:
            return None
        try:
            if not request.headers.get("x-goog-api-key"):
                raise _Invalid("Method doesn't allow unregistered callers. Please use API key.", 403)
            body = request.json
            if not isinstance(body, dict):
                raise _Invalid("Invalid JSON payload received.")
            model, method = route["model"], route["method"]
            if model.startswith("imagen-") != (method == "predict"):
                raise _Invalid(f"models/{model} is not found for API version v1beta, or is not supported for {method}.", 404)
            return Reply.json(self._predict(model, body) if method == "predict" else self._generate(body))
        except _Invalid as problem:
            return _error(problem)

    def _predict(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            raise _Invalid("Invalid value at 'instances': exactly one instance is expected.")
        if not isinstance(instances[0].get("prompt"), str) or not instances[0]["prompt"]:
            raise _Invalid("The prompt is required.")
        parameters = body.get("parameters") or {}
        unknown = set(parameters) - {"sampleCount", "aspectRatio", "personGeneration", "imageSize"}
        if unknown:
            raise _Invalid(f"Invalid JSON payload received. Unknown name \"{sorted(unknown)[0]}\" at 'parameters'.")
        count = parameters.get("sampleCount", 4)
        most = 1 if "ultra" in model else 4
        if not isinstance(count, int) or not 1 <= count <= most:
            raise _Invalid(f"sampleCount must be from 1 to {most} for {model}.")
        if parameters.get("aspectRatio", "1:1") not in IMAGEN_RATIOS:
            raise _Invalid(f"Unsupported aspect ratio: {parameters['aspectRatio']}.")
        if "imageSize" in parameters and (parameters["imageSize"] not in ("1K", "2K") or "fast" in model):
            raise _Invalid(f"imageSize {parameters['imageSize']} is not supported for {model}.")
        if parameters.get("personGeneration", "allow_adult") not in ("dont_allow", "allow_adult", "allow_all"):
            raise _Invalid("Invalid personGeneration.")
        if self.image_prompt_blocked:
            return {}
        return {"predictions": [{"bytesBase64Encoded": PNG_B64, "mimeType": "image/png"} for _ in range(count)]}

    def _generate(self, body: dict[str, Any]) -> dict[str, Any]:
        config = body.get("generationConfig") or {}
        if "IMAGE" not in (config.get("responseModalities") or []):
            raise _Invalid("This model only supports responseModalities including IMAGE.")
        ratio = (config.get("imageConfig") or {}).get("aspectRatio", "1:1")
        if ratio not in GEMINI_RATIOS:
            raise _Invalid(f"Unsupported aspect ratio: {ratio}.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _Invalid("* GenerateContentRequest.contents: contents is not specified")
        parts = [p for turn in contents for p in (turn.get("parts") or [])]
        text = sum(len(p.get("text") or "") for p in parts)
        images = 0
        for part in parts:
            inline = part.get("inlineData")
            if inline is not None:
                if inline.get("mimeType") not in ("image/png", "image/jpeg", "image/webp") or not inline.get("data"):
                    raise _Invalid("Unsupported MIME type or empty inline data.")
                images += 1
        text_tokens = max(1, text // 4)
        usage = {
            "promptTokenCount": text_tokens + images * INPUT_IMAGE_TOKENS,
            "candidatesTokenCount": OUTPUT_TOKENS_PER_IMAGE,
            "totalTokenCount": text_tokens + images * INPUT_IMAGE_TOKENS + OUTPUT_TOKENS_PER_IMAGE,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": text_tokens}]
            + ([{"modality": "IMAGE", "tokenCount": images * INPUT_IMAGE_TOKENS}] if images else []),
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": OUTPUT_TOKENS_PER_IMAGE}],
        }
        if self.image_prompt_blocked:
            return {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}], "usageMetadata": usage}
        content = {"role": "model", "parts": [{"text": "Here is your image."}, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}]}
        return {
            "candidates": [{"content": content, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash-image",
        }
