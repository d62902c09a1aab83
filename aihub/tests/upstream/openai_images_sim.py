"""OpenAI images: POST /images/generations (JSON) and /images/edits (multipart), mixed into the provider's simulator."""

from __future__ import annotations

from aihub.tests.upstream.sim import Received, Reply


class ImagesRoutes:
    def images_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        return None
