"""The model board's "test" button: a one-token chat completion (an embedding of one word, for an
embedding model) through the real AI pipeline.

The call is the one an admin would make with `POST /v1/ai/chat/completions` and the admin key,
naming a studio: the same handler, admitted against that studio's plan, limits and budget, sent
upstream, settled, and written as a usage record (no token, no account) that counts in the
studio's usage and spend like any other call. Nothing is patched or skipped.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.http import HttpRequest

from aihub.catalog import models_by_id
from aihub.catalog_types import EMBEDDINGS, TEXT, Model
from city.calls import Call
from city.errors import ApiError
from city.identity import Identity
from city.ids import new_id
from city.registry import ADMIN, registry

log = logging.getLogger("aihub.model_test")

CHAT_ROUTE = "ai/chat/completions"
EMBEDDINGS_ROUTE = "ai/embeddings"
PROMPT = "Reply with the single word: ok"


def request_for(model_id: str, studio_id: str) -> tuple[str, dict[str, Any]]:
    """The route and body of the test call: chat with max_tokens 1, or (embedding models) one word embedded."""
    model = models_by_id().get(model_id)
    if model is not None and EMBEDDINGS in model.modalities and TEXT not in model.modalities:
        return EMBEDDINGS_ROUTE, {"model": model_id, "input": "ok", "studio_id": studio_id}
    body = {"model": model_id, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1, "studio_id": studio_id}
    return CHAT_ROUTE, body


def is_media(model: Model) -> bool:
    """Image, speech, transcription and video models: a one-token test call has no equivalent for them."""
    return not any(mode in model.modalities for mode in (TEXT, EMBEDDINGS))


@dataclass(frozen=True)
class TestOutcome:
    model: str
    studio_id: str
    request_id: str
    latency_ms: int
    status: int
    answer: str = ""  # the model's words, on success
    usage: str = ""  # "12 in / 1 out", on success
    error_code: str = ""
    error: str = ""  # City's message (an upstream failure's status and message are in it)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def try_model(request: HttpRequest, model_id: str, studio_id: str, *, who: str) -> TestOutcome:
    """Sends one short prompt with max_tokens 1 as the admin (`who` names the Django user for the audit
    label), billed to `studio_id`; returns what came back. Refusals and upstream failures are outcomes,
    never exceptions."""
    model = models_by_id().get(model_id)
    if model is not None and is_media(model):
        message = f"{model_id} makes {model.unit or 'media'}: the board tests chat and embedding models only; call its route to try it."
        return TestOutcome(model_id, studio_id, "", 0, 400, error_code="unsupported_model", error=message)
    route, body = request_for(model_id, studio_id)
    action = registry().resolve(route).action
    assert action is not None, f"{route} is not registered"
    identity = Identity(kind=ADMIN, label=f"admin:{who}")
    call = Call(request=request, identity=identity, action=action, data={}, request_id=new_id("req"))
    started = time.monotonic()
    try:
        call.data = action.input_spec.validate(body)
        response: Any = await action.handler(call)
    except ApiError as exc:
        return TestOutcome(
            model_id, studio_id, call.request_id, _ms_since(started), exc.status, error_code=exc.code or exc.type, error=exc.message
        )
    except Exception:
        # As the API answers an unexpected failure: logged with its request id, a sentence on the page.
        log.exception("the test call of %s failed (request %s)", model_id, call.request_id)
        message = "City failed to handle this call; the error is logged with its request id."
        return TestOutcome(model_id, studio_id, call.request_id, _ms_since(started), 500, error_code="internal_error", error=message)
    latency = _ms_since(started)
    payload = orjson.loads(response.content)
    if response.status_code != 200:
        error = payload.get("error") or {}
        return TestOutcome(
            model_id,
            studio_id,
            call.request_id,
            latency,
            response.status_code,
            error_code=error.get("code") or "",
            error=error.get("message") or "",
        )
    usage = payload.get("usage") or {}
    if route == EMBEDDINGS_ROUTE:
        vector = (payload.get("data") or [{}])[0].get("embedding") or []
        answer = f"a vector of {len(vector)} dimensions"
    else:
        reply = (payload.get("choices") or [{}])[0].get("message") or {}
        answer = reply.get("content") or reply.get("reasoning_content") or "(no text: the one token may have gone to reasoning)"
    return TestOutcome(
        model_id,
        studio_id,
        call.request_id,
        latency,
        200,
        answer=str(answer),
        usage=f"{usage.get('prompt_tokens', 0)} in / {usage.get('completion_tokens', 0)} out",
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
