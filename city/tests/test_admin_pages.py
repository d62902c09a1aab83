"""What every Django admin test needs: a superuser signed in, and requests that run on-commit hooks.

A mixin, not a TestCase, so that pytest collects nothing from this module by itself.
"""

import re
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import TestCase

from city.models import AuditEntry

ROOT_PASSWORD = "not-a-real-password-7f3a"
RAW_TOKEN = re.compile(r"ub_[A-Za-z0-9_\-]{43}")


if TYPE_CHECKING:
    # The mixin is only ever mixed into a TestCase: type-check it as one.
    _AdminPagesBase = TestCase
else:
    _AdminPagesBase = object


class AdminPages(_AdminPagesBase):
    """Root is a Django superuser (`createsuperuser`); each test starts signed in as root."""

    root: User  # settings.AUTH_USER_MODEL is Django's own

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.root = get_user_model().objects.create_superuser("root", "root@example.invalid", ROOT_PASSWORD)

    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(self.root)

    def page(self, url: str, params: dict[str, Any] | None = None, *, status: int = 200) -> Any:
        response = self.client.get(url, params or {})
        self.assertEqual(response.status_code, status, response.content[:300])
        return response

    def submit(self, url: str, data: dict[str, Any], *, client: Any = None) -> Any:
        """A form POST, with on-commit hooks run as in production (token cache invalidation)."""
        with self.captureOnCommitCallbacks(execute=True):
            return (client or self.client).post(url, data)

    def run_action(self, changelist: str, action: str, ids: list[str], **extra: Any) -> Any:
        return self.submit(changelist, {"action": action, "_selected_action": ids, "index": 0, **extra})

    def messages_of(self, response: Any) -> list[str]:
        return [str(m) for m in get_messages(response.wsgi_request)]

    def audit(self, action: str, target: str | None = None) -> list[AuditEntry]:
        entries = AuditEntry.objects.filter(action=action).order_by("id")
        if target is not None:
            entries = entries.filter(target=target)
        return list(entries)
