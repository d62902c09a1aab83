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
        os.chdir(settings.BASE_DIR)  # Daphne imports city.asgi from the working directory
        # Daphne's command line with an access log that writes no query values (city/daphne_server.py).
        argv = [sys.executable, "-m", "city.daphne_server", "-b", host, "-p", port, "--proxy-headers", "city.asgi:application"]
        os.execv(sys.executable, argv)  # noqa: S606 (replaces this process: no shell involved)
