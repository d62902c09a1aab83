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
        argv = [sys.executable, "-m", "city.daphne_server", "-b", host, "-p", port]
        if settings.ACCOUNTS_TRUSTED_PROXY_COUNT > 0:
            # Only behind a proxy: Daphne then takes the client address (and scheme) from X-Forwarded-*
            # headers, which any client could otherwise write itself, e.g. to escape the sign-in
            # throttle per address. City reads its own trusted hop of X-Forwarded-For (accounts/throttle.py).
            argv.append("--proxy-headers")
        argv.append("city.asgi:application")
        os.execv(sys.executable, argv)  # noqa: S606 (replaces this process: no shell involved)
