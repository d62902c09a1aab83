"""The adapter registry: one adapter per wire protocol, named by `Deployment.adapter`.

`adapter_for(upstream)` gives the adapter bound to that upstream's pooled client (see pool.py).
"""

import weakref

import httpx

from aihub.adapters.anthropic import AnthropicAdapter
from aihub.adapters.base import Adapter, Upstream
from aihub.adapters.deepgram import DeepgramAdapter
from aihub.adapters.elevenlabs import ElevenLabsAdapter
from aihub.adapters.gemini import GeminiAdapter
from aihub.adapters.openai_compat import OpenAICompatAdapter
from aihub.adapters.pool import client_for

ADAPTERS: dict[str, type[Adapter]] = {
    "openai": OpenAICompatAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "deepgram": DeepgramAdapter,
    "elevenlabs": ElevenLabsAdapter,
}

# Adapters live as long as their client (per loop, per base URL).
_instances: "weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, Adapter]]" = weakref.WeakKeyDictionary()


def adapter_for(upstream: Upstream) -> Adapter:
    """The adapter for `upstream`, holding the pooled client of its base URL in this event loop."""
    client = client_for(upstream.base_url)
    per_client = _instances.get(client)
    if per_client is None:
        per_client = _instances[client] = {}
    adapter = per_client.get(upstream.adapter)
    if adapter is None:
        adapter = per_client[upstream.adapter] = ADAPTERS[upstream.adapter](client)
    return adapter
