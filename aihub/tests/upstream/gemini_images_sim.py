"""Gemini images: Imagen `models/{model}:predict`, and image output of `:generateContent` models, mixed into the provider's simulator."""

from __future__ import annotations

from aihub.tests.upstream.sim import Received, Reply


class GeminiImagesRoutes:
    def gemini_images_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        return None
