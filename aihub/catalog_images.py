"""Image models, served through /v1/ai/image, /v1/ai/images/generations and images/edits."""

from aihub.catalog_types import Model

MODELS: tuple[Model, ...] = ()
