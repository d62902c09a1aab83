"""Veo video: `models/{model}:predictLongRunning`, `GET operations/{name}` and the file download, mixed into the provider's simulator."""

from __future__ import annotations

from aihub.tests.upstream.sim import Received, Reply


class GeminiVideoRoutes:
    def gemini_video_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        return None
