import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve City with Daphne on CITY_HOST:CITY_PORT (replaces this process)."

    def handle(self, *args, **options) -> None:
        host, port = settings.CITY_HOST, str(settings.CITY_PORT)
        self.stdout.write(f"City on http://{host}:{port}/  (admin: /admin/, API: /v1/services)")
        self.stdout.write("The admin credential is ADMIN_SECRET_KEY, from the environment or .env.")
        sys.stdout.flush()
        daphne = os.path.join(os.path.dirname(sys.executable), "daphne")
        os.execv(daphne, [daphne, "-b", host, "-p", port, "--proxy-headers", "city.asgi:application"])  # noqa: S606 (replaces this process: no shell involved)
