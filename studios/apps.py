from django.apps import AppConfig


class StudiosConfig(AppConfig):
    name = "studios"
    verbose_name = "Studios"
    default_auto_field = "django.db.models.BigAutoField"
