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

    def secret(self, var: str, *, min_length: int) -> str:
        """A secret of at least `min_length` characters; a shorter one stops start-up (its length is not a secret worth keeping)."""
        value = self.str(var)
        if len(value) < min_length:
            raise ImproperlyConfigured(
                f"The environment variable {var} is too short to be a secret: use at least {min_length} random characters, "
                "for example the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    def optional_secret(self, var: str, *, min_length: int) -> str:
        """A secret that may be left unset (""); when set, at least `min_length` characters."""
        return self.secret(var, min_length=min_length) if self.str(var, default="") else ""
