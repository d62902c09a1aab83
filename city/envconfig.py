"""django-environ, with errors that name the key whose value is malformed (never the value)."""

from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured


class CityEnv(environ.FileAwareEnv):
    def get_value(self, var: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_value(var, *args, **kwargs)
        except ImproperlyConfigured:
            raise ImproperlyConfigured(f"Set the environment variable {var}: it is required.") from None
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"The environment variable {var} has a malformed value; see the configuration table in the README."
            ) from None
