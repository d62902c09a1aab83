"""`manage.py purge_responses`: delete the stored responses of the Responses API whose retention
(CITY_RESPONSES_RETENTION_DAYS, counted from each response's creation) has ended.

Run it from cron (daily is plenty): an expired response already answers 404 and no longer serves as
a `previous_response_id`; this frees its row.
"""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from aihub import responses_store


class Command(BaseCommand):
    help = "Delete stored responses (Responses API) whose retention has ended."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"stored responses: {responses_store.purge_expired(timezone.now())} deleted")
