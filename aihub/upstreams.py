"""Which deployments of a model are callable now, resolved against the runtime env.

The runtime env is a per-process snapshot (city/runtime_env.py), dropped by every process when an env
write commits and re-read with one query, never one per request: an `env/upsert` or `env/remove` is
honoured at once (within CITY_ENV_CACHE_SECONDS if the broadcast is lost).
"""

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from aihub.adapters import ADAPTERS
from aihub.adapters.base import Upstream
from aihub.catalog import models_by_id
from aihub.catalog_types import Deployment, Model
from city.errors import ApiError
from city.runtime_env import runtime_env


async def resolve(model: Model, deployment: Deployment) -> Upstream | None:
    """One of `model`'s deployments with its key and base URL filled in and the model's limits
    attached, or None while its required env is unset (or while its adapter is not installed)."""
    if deployment.adapter not in ADAPTERS:
        return None
    api_key = await runtime_env.aget(deployment.api_key_env) if deployment.api_key_env else None
    if deployment.api_key_required and deployment.api_key_env and not api_key:
        return None
    base_url = await runtime_env.aget(deployment.base_url_env)
    if base_url:
        base_url = configured_base_url(base_url, deployment.adapter, deployment.default_base_url)
    else:
        if deployment.base_url_required or not deployment.default_base_url:
            return None
        base_url = deployment.default_base_url
    upstream_model = (await runtime_env.aget(deployment.model_env) if deployment.model_env else None) or deployment.upstream_model
    return Upstream(
        provider=deployment.provider,
        adapter=deployment.adapter,
        model=upstream_model,
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        base_url_env=deployment.base_url_env,
        api_key_env=deployment.api_key_env or "",
        legacy_completions=deployment.legacy_completions,
        native_responses=deployment.native_responses,
        max_output_tokens=model.max_output_tokens,
    )


# The version path each wire protocol's adapter appends itself (a base URL ending in it would double it).
_ADAPTER_VERSION_PATHS = {"anthropic": ("/v1",), "gemini": ("/v1beta", "/v1"), "elevenlabs": ("/v1",), "deepgram": ("/v1",)}


@lru_cache(maxsize=256)
def configured_base_url(value: str, adapter: str, default_base_url: str) -> str:
    """A `*_BASE_URL` as people write it → the base the adapter expects.

    Both forms work where the provider's path is known: an OpenAI-compatible base URL that names
    only a host (`http://127.0.0.1:8000`) gets the path of the provider's own URL (OpenAI's `/v1`,
    Qwen's `/compatible-mode/v1`, GLM's `/api/paas/v4`; `/v1` for local servers, which all serve
    it; DeepSeek serves its API at the root), and an Anthropic or Gemini base URL ending in the
    version path its adapter appends (`…/v1`, `…/v1beta`) loses it. Any other path is kept as
    written (a proxy may mount the API anywhere); an upstream 404 names the base URL and its key.
    """
    parts = urlsplit(value.strip())
    path = parts.path.rstrip("/")
    if adapter in _ADAPTER_VERSION_PATHS:
        for suffix in _ADAPTER_VERSION_PATHS[adapter]:
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
    elif not path:
        path = urlsplit(default_base_url).path.rstrip("/") if default_base_url else "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment)).rstrip("/")


async def callable_upstreams(model: Model) -> list[Upstream]:
    """The model's deployments that can be called now, in fail-over order."""
    found = []
    for deployment in model.deployments:
        upstream = await resolve(model, deployment)
        if upstream is not None:
            found.append(upstream)
    return found


async def is_callable(model: Model) -> bool:
    for deployment in model.deployments:
        if await resolve(model, deployment) is not None:
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


def known_model(model_id: object) -> Model:
    """The named model: 400 when `model` is missing or not a string, 404 `model_not_found` when unknown."""
    model_id = check_model_field(model_id)
    model = models_by_id().get(model_id)
    if model is None:
        raise model_not_found(model_id)
    return model


async def callable_model(model: Model, *needs: str) -> list[Upstream]:
    """The model's callable upstreams: 404 `model_not_found` when none of its deployments is configured,
    400 when it lacks one of the modalities it `needs`."""
    upstreams = await callable_upstreams(model)
    if not upstreams:
        raise model_not_found(model.id)
    missing = [m for m in needs if m not in model.modalities]
    if missing:
        kinds = ", ".join(model.modalities)
        raise ApiError(
            400, f"The model '{model.id}' does not serve {missing[0]}; it serves: {kinds}.", param="model", code="unsupported_model"
        )
    return upstreams
