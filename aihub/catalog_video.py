"""Video models, served through /v1/ai/video and /v1/ai/videos."""

from aihub.catalog_types import Model

MODELS: tuple[Model, ...] = ()
