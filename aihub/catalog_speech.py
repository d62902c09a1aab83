"""Text-to-speech models, served through /v1/ai/tts and /v1/ai/audio/speech."""

from aihub.catalog_types import Model

MODELS: tuple[Model, ...] = ()
