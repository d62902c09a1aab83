"""OpenAI-compatible videos: POST /videos, GET /videos/{id}, GET /videos/{id}/content, GET /videos, DELETE /videos/{id}, mixed into the provider's simulator."""

from __future__ import annotations

from aihub.tests.upstream.sim import Received, Reply


class VideosRoutes:
    def videos_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        return None
