"""How each provider is reached: one Deployment constructor per provider, with its env keys and base URL
(see aihub/catalog.py for the models that use them).

Base URLs follow each provider's own SDK: the OpenAI-compatible ones end where `/chat/completions`
is appended (`https://api.openai.com/v1`), Anthropic's and Gemini's are the host (the adapter adds
`/v1/messages`, `/v1beta/models/…`). Every one is overridable through its `*_BASE_URL` env key.
"""

from aihub.catalog_types import Deployment


def deepseek(model: str) -> Deployment:
    return Deployment("deepseek", "openai", model, "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com")


def openai(model: str, *, legacy_completions: bool = False) -> Deployment:
    return Deployment(
        "openai",
        "openai",
        model,
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "https://api.openai.com/v1",
        legacy_completions=legacy_completions,
        native_responses=True,
    )


def anthropic(model: str) -> Deployment:
    return Deployment("anthropic", "anthropic", model, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com")


def gemini(model: str) -> Deployment:
    return Deployment("google", "gemini", model, "GEMINI_API_KEY", "GEMINI_BASE_URL", "https://generativelanguage.googleapis.com")


def moonshot(model: str) -> Deployment:
    return Deployment("moonshot", "openai", model, "MOONSHOT_API_KEY", "MOONSHOT_BASE_URL", "https://api.moonshot.ai/v1")


def qwen(model: str) -> Deployment:
    return Deployment(
        "qwen", "openai", model, "DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    )


def zai(model: str) -> Deployment:
    return Deployment("zai", "openai", model, "ZAI_API_KEY", "ZAI_BASE_URL", "https://api.z.ai/api/paas/v4")


def openrouter(model: str) -> Deployment:
    return Deployment("openrouter", "openai", model, "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")


# A local OpenAI-compatible server: Ollama (http://127.0.0.1:11434/v1), vLLM (http://127.0.0.1:8000/v1),
# llama.cpp's llama-server (http://127.0.0.1:8080/v1). Callable once LOCAL_OPENAI_BASE_URL is set.
def local(model: str, model_env: str) -> Deployment:
    return Deployment(
        "local",
        "openai",
        model,
        "LOCAL_OPENAI_API_KEY",
        "LOCAL_OPENAI_BASE_URL",
        "",
        base_url_required=True,
        api_key_required=False,
        model_env=model_env,
        legacy_completions=True,
    )


# Deepgram's pre-recorded speech-to-text (POST /v1/listen); the adapter adds /v1 itself.
def deepgram(model: str) -> Deployment:
    return Deployment("deepgram", "deepgram", model, "DEEPGRAM_API_KEY", "DEEPGRAM_BASE_URL", "https://api.deepgram.com")


# ElevenLabs' own API (text-to-speech): its adapter appends /v1/text-to-speech/{voice_id}.
def elevenlabs(model: str) -> Deployment:
    return Deployment("elevenlabs", "elevenlabs", model, "ELEVENLABS_API_KEY", "ELEVENLABS_BASE_URL", "https://api.elevenlabs.io")


# A host that serves OpenAI's Videos API (POST /v1/videos, GET /v1/videos/{id}, …/content) after
# OpenAI shut its own down in 2026: reached by its base URL only (there is no default host); the
# key is sent when set.
def openai_video(model: str) -> Deployment:
    return Deployment(
        "openai-video",
        "openai",
        model,
        "VIDEO_OPENAI_API_KEY",
        "VIDEO_OPENAI_BASE_URL",
        "",
        base_url_required=True,
        api_key_required=False,
    )
