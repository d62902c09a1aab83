from django.db import models
from django.utils import timezone

from city.ids import new_id


def new_studio_id() -> str:
    return new_id("studio")


def new_token_id() -> str:
    return new_id("tok")


class Studio(models.Model):
    """A tenant: a client app that calls City with its user tokens."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"  # its tokens get 403 until it is activated again
        REMOVED = "removed"  # soft removal: history stays, its tokens get 401, for good

    id = models.CharField(primary_key=True, max_length=40, default=new_studio_id, editable=False)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    paused_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"], name="studios_by_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class UserToken(models.Model):
    """A studio credential. Only its HMAC digest is stored; the raw token is shown once."""

    id = models.CharField(primary_key=True, max_length=40, default=new_token_id, editable=False)
    # No index of its own: studios_token_by_studio (studio, -id) serves every lookup by studio.
    studio = models.ForeignKey(Studio, on_delete=models.PROTECT, related_name="tokens", db_index=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)  # "ub_" + 8 chars, shown in lists and logs
    digest = models.CharField(max_length=64, unique=True)  # HMAC-SHA-256 under a key outside the database
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set for tokens issued at an account's sign-in or by the account itself; that account manages them.
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, null=True, blank=True, related_name="tokens")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["studio", "-id"], name="studios_token_by_studio"),
            # Partial, so small: the admin's "revoked" and "expired" lists without reading every token.
            models.Index(fields=["-id"], condition=models.Q(revoked_at__isnull=False), name="studios_token_revoked"),
            models.Index(
                fields=["-id", "expires_at"],
                condition=models.Q(revoked_at__isnull=True, expires_at__isnull=False),
                name="studios_token_expiring",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name}"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"
