from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import BigIntegerField, DateTimeField, JSONField, PositiveIntegerField
from django.utils import timezone

from city.ids import new_id


def new_studio_id() -> str:
    return new_id("studio")


def new_token_id() -> str:
    return new_id("tok")


def new_plan_id() -> str:
    return new_id("plan")


class Plan(models.Model):
    """What a studio, or one token, may call and spend: a model whitelist and limits.

    Money is integer micro-dollars (1e-6 USD); a null limit means none. `models` null allows every
    model, an empty list none. A token's plan wins over its studio's (studios/plans.py).
    """

    id = models.CharField(primary_key=True, max_length=40, default=new_plan_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    # Named like the module: the fields below use the imported classes, not `models.`.
    models = JSONField(null=True, blank=True)  # model ids and glob patterns (fnmatch, case-sensitive)
    max_cost_per_request = BigIntegerField(null=True, blank=True)  # micro-USD
    monthly_budget = BigIntegerField(null=True, blank=True)  # micro-USD, per UTC calendar month
    rpm = PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    tpm = PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    max_concurrency = PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    created_at = DateTimeField(default=timezone.now, editable=False)
    updated_at = DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_cost_per_request__gte=0) | models.Q(max_cost_per_request__isnull=True), name="plan_cap_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(monthly_budget__gte=0) | models.Q(monthly_budget__isnull=True), name="plan_budget_not_negative"
            ),
            models.CheckConstraint(condition=models.Q(rpm__gte=1) | models.Q(rpm__isnull=True), name="plan_rpm_positive"),
            models.CheckConstraint(condition=models.Q(tpm__gte=1) | models.Q(tpm__isnull=True), name="plan_tpm_positive"),
            models.CheckConstraint(
                condition=models.Q(max_concurrency__gte=1) | models.Q(max_concurrency__isnull=True), name="plan_concurrency_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


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
    # Limits the studio as a whole, all its tokens together; changed through plan_operations.assign_plan.
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="studios")

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
    # Limits this token alone, and wins over its studio's plan for the whitelist and the per-request cap.
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="tokens")

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
