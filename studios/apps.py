from django.apps import AppConfig


class StudiosConfig(AppConfig):
    name = "studios"
    verbose_name = "Studios"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from city import invalidation
        from studios.credentials import token_cache

        # What studios/operations.py (and accounts, for a disabled account) publish after a commit.
        invalidation.register("token", token_cache.forget)  # key: the token's digest (revoked, or rotated away)
        invalidation.register("studio", token_cache.forget_studio)  # paused, activated, removed
        invalidation.register("account", token_cache.forget_account)  # disabled
