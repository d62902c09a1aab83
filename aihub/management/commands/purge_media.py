"""`manage.py purge_media`: delete the media whose retention (CITY_MEDIA_RETENTION_HOURS) has ended.

Run it from cron (hourly is plenty). A purged video's job stays, so that its id answers 404
`video_expired` rather than `video_not_found`. Each kind of kept media adds one line to PURGES.
It also polls the video jobs nobody polls (video_jobs.sweep), so that each ends, and a failed one is
refunded, even if its studio never asks again.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from aihub import image_results, video_jobs

# (what, purge(now) → how many were deleted)
PURGES: list[tuple[str, Callable[[datetime], int]]] = [
    ("videos", video_jobs.purge_expired),
    ("kept images", image_results.purge_expired),
]


class Command(BaseCommand):
    help = "Delete stored media (videos, kept results) whose retention has ended."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        for what, purge in PURGES:
            self.stdout.write(f"{what}: {purge(now)} deleted")
        self.stdout.write(f"unfinished videos: {video_jobs.sweep(now)} polled")
