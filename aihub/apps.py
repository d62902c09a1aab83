from django.apps import AppConfig


class AihubConfig(AppConfig):
    name = "aihub"
    default_auto_field = "django.db.models.BigAutoField"
