"""GET /v1/ai/models (and /v1/models): the catalog as the caller may see it.

One answer carries both shapes: City's `items` and OpenAI's `{"object": "list", "data": [...]}`, so
`openai.models.list()` works with base URL `…/v1/ai` and `…/v1`. A studio token sees the models
callable now (their required env is set); the admin sees every model, with `env_requirements`,
`default_modes` and whether it is callable.
"""

from typing import Any

from aihub.catalog import MODELS, models_by_id
from aihub.catalog_types import Model
from aihub.upstreams import is_callable, model_not_found
from city.calls import Call


def city_item(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "name": model.name,
        "description": model.description,
        "modalities": list(model.modalities),
        "tags": list(model.tags),
        "meta": model.public_meta(),
    }


def openai_item(model: Model) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": model.created, "owned_by": model.owned_by}


async def list_models(call: Call) -> dict[str, Any]:
    if call.subpath:
        return await retrieve_model(call)
    admin = call.identity.is_admin
    items, data = [], []
    for model in MODELS:
        callable_now = await is_callable(model)
        if not admin and not callable_now:
            continue
        item = city_item(model)
        if admin:
            item["env_requirements"] = [req.as_dict() for req in model.env_requirements()]
            item["default_modes"] = list(model.default_modes)
            item["callable"] = callable_now
        items.append(item)
        data.append(openai_item(model))
    return {"object": "list", "data": data, "items": items}


async def retrieve_model(call: Call) -> dict[str, Any]:
    """GET /v1/models/{id} (OpenAI's models.retrieve): one model, if the caller may see it."""
    model = models_by_id().get(call.subpath)
    if model is None or (not call.identity.is_admin and not await is_callable(model)):
        raise model_not_found(call.subpath)
    return {**city_item(model), **openai_item(model)}
