from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One admin operation: who, what, on what, when, and how it ended. Never a secret value."""

    actor = models.CharField(max_length=200)  # "admin" (API key), "admin:<django user>"
    action = models.CharField(max_length=100)  # "studios/pause", "admin/tokens/revoke", …
    target = models.CharField(max_length=200, blank=True)  # an id or env key, never a value
    outcome = models.CharField(max_length=100, default="ok")  # "ok", or "<status> <error code>"
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["-created_at"], name="city_audit_by_time"),
            models.Index(fields=["action", "-created_at"], name="city_audit_by_action"),
            models.Index(fields=["target"], name="city_audit_by_target"),
            models.Index(fields=["actor", "-created_at"], name="city_audit_by_actor"),
            # Partial, so small: the admin's "failed" filter without reading the whole log.
            models.Index(fields=["-created_at"], condition=~models.Q(outcome="ok"), name="city_audit_failures"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target} ({self.outcome})"


class EnvVar(models.Model):
    """A runtime env value set through City; it wins over the process environment."""

    key = models.CharField(max_length=128, unique=True)
    ciphertext = models.TextField()  # Fernet token under a key derived from CITY_SECRET_KEY
    description = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "env variable"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key
