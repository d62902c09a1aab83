from django.apps import AppConfig


class StudiosConfig(AppConfig):
    name = "studios"
    verbose_name = "Studios"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from city import invalidation
        from studios.credentials import token_cache
        from studios.plans import plan_cache, studio_cache

        # What studios/operations.py (and accounts, for a disabled account) publish after a commit.
        invalidation.register("token", token_cache.forget)  # key: the token's digest (revoked, rotated away, plan assigned)
        invalidation.register("studio", token_cache.forget_studio)  # paused, activated, removed, plan assigned
        invalidation.register("account", token_cache.forget_account)  # disabled
        # A studio's plan is on its tokens' entries (dropped above) and in the admin's studio cache.
        invalidation.register("studio", studio_cache.forget)  # also: its plan assigned or cleared
        invalidation.register("plan", plan_cache.forget)  # key: the plan's id (created, updated, removed)
