"""Which deployments of a model are callable now, resolved against the runtime env.

The runtime env is a per-process snapshot refreshed every CITY_ENV_CACHE_SECONDS with one query,
so an `env/upsert` or `env/remove` is honoured within that time without a query per request.
"""

from aihub.adapters import ADAPTERS
from aihub.catalog import models_by_id
from aihub.catalog_types import Deployment, Model, Upstream
from city.errors import ApiError
from city.runtime_env import runtime_env


async def resolve(deployment: Deployment) -> Upstream | None:
    """The deployment with its key and base URL filled in, or None while its required env is unset
    (or while its adapter is not installed)."""
    if deployment.adapter not in ADAPTERS:
        return None
    api_key = await runtime_env.aget(deployment.api_key_env) if deployment.api_key_env else None
    if deployment.api_key_required and deployment.api_key_env and not api_key:
        return None
    base_url = await runtime_env.aget(deployment.base_url_env)
    if not base_url:
        if deployment.base_url_required or not deployment.default_base_url:
            return None
        base_url = deployment.default_base_url
    model = (await runtime_env.aget(deployment.model_env) if deployment.model_env else None) or deployment.upstream_model
    return Upstream(
        provider=deployment.provider,
        adapter=deployment.adapter,
        model=model,
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        legacy_completions=deployment.legacy_completions,
    )


async def callable_upstreams(model: Model) -> list[Upstream]:
    """The model's deployments that can be called now, in fail-over order."""
    found = []
    for deployment in model.deployments:
        upstream = await resolve(deployment)
        if upstream is not None:
            found.append(upstream)
    return found


async def is_callable(model: Model) -> bool:
    for deployment in model.deployments:
        if await resolve(deployment) is not None:
            return True
    return False


def model_not_found(model_id: object) -> ApiError:
    shown = model_id if isinstance(model_id, str) else ""
    return ApiError(
        404,
        f"The model '{shown[:100]}' does not exist or is not callable now; GET /v1/ai/models lists the models you can call.",
        code="model_not_found",
        param="model",
    )


def check_model_field(model_id: object) -> str:
    """A request's `model`: a non-empty string, else a 400 naming the field."""
    if model_id is None or model_id == "":
        raise ApiError(400, "model is required: name a model id from GET /v1/ai/models.", param="model", code="missing_field")
    if not isinstance(model_id, str):
        raise ApiError(400, "model must be a string, a model id from GET /v1/ai/models.", param="model", code="invalid_type")
    return model_id


async def callable_model(model_id: object, *needs: str) -> tuple[Model, list[Upstream]]:
    """The named model and its callable upstreams; 400 when `model` is missing, 404 `model_not_found`
    when it is unknown or none of its deployments is configured, 400 when it lacks one of the modalities it `needs`."""
    model_id = check_model_field(model_id)
    model = models_by_id().get(model_id)
    if model is None:
        raise model_not_found(model_id)
    upstreams = await callable_upstreams(model)
    if not upstreams:
        raise model_not_found(model_id)
    missing = [m for m in needs if m not in model.modalities]
    if missing:
        kinds = ", ".join(model.modalities)
        raise ApiError(
            400, f"The model '{model_id}' does not serve {missing[0]}; it serves: {kinds}.", param="model", code="unsupported_model"
        )
    return model, upstreams
