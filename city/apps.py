from django.apps import AppConfig


class CityConfig(AppConfig):
    name = "city"
    verbose_name = "City"
    default_auto_field = "django.db.models.BigAutoField"
