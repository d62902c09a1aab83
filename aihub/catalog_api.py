"""GET /v1/ai/models (and /v1/models): the catalog as the caller may see it.

One answer carries both shapes: City's `items` and OpenAI's `{"object": "list", "data": [...]}`, so
`openai.models.list()` works with base URL `…/v1/ai` and `…/v1`. A studio token sees the models
callable now (their required env is set) that its plan allows (a token's plan, else its studio's);
the admin sees every model, with `env_requirements`, `default_modes` and whether it is callable.
"""

from typing import Any

from aihub.catalog import MODELS, models_by_id
from aihub.catalog_types import Model
from aihub.upstreams import is_callable, model_not_found
from city.calls import Call
from studios.plans import plan_scopes


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
    plan = None if admin else (await plan_scopes(call.identity, call.studio_id())).effective
    items, data = [], []
    for model in MODELS:
        if plan is not None and not plan.allows(model.id):
            continue
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
    if model is None:
        raise model_not_found(call.subpath)
    if not call.identity.is_admin:
        plan = (await plan_scopes(call.identity, call.studio_id())).effective
        if (plan is not None and not plan.allows(model.id)) or not await is_callable(model):
            raise model_not_found(call.subpath)  # a model outside the plan is not shown, not even by name
    return {**city_item(model), **openai_item(model)}
