"""Speech recognition models, served through /v1/ai/asr, /v1/ai/audio/transcriptions and audio/translations."""

from aihub.catalog_types import Model

MODELS: tuple[Model, ...] = ()
