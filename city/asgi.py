"""ASGI entry point: body limit → `/v1/` to the lean API handler, the rest to Django's full stack.

    HTTP ─ BodyLimitMiddleware ─┬─ /v1, /v1/… ─ ApiApp (host check and security headers inline)
                                └─ otherwise ── static files (admin) ─ Django with settings.MIDDLEWARE

The browser pages (/admin/, the dashboard) keep sessions, CSRF, auth and messages; the bearer-token
API skips them (see city/apiapp.py for why and what it keeps).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
django_app = get_asgi_application()  # sets Django up before anything imports models

import orjson  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up)
from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402
from servestatic import ServeStaticASGI  # noqa: E402

from city.apiapp import ApiApp  # noqa: E402
from city.bodylimit import BodyLimitMiddleware  # noqa: E402
from city.errors import ApiError  # noqa: E402
from city.invalidation import WithInvalidationListener  # noqa: E402
from city.registry import Action, registry  # noqa: E402

api_app = ApiApp(sync_threads=settings.CITY_SYNC_THREADS)
# Static files are served at the ASGI level: a sync Django middleware would push every async view into a thread.
# `make run` collects them into STATIC_ROOT; a process started another way serves an empty folder.
settings.STATIC_ROOT.mkdir(parents=True, exist_ok=True)
with_static = ServeStaticASGI(django_app, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)


def is_api_path(scope) -> bool:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == "/v1" or path.startswith("/v1/")


async def by_path(scope, receive, send) -> None:
    if is_api_path(scope):
        await api_app(scope, receive, send)
    else:
        await with_static(scope, receive, send)


# Outermost: it starts each process's invalidation listener (lifespan or first request) and answers the lifespan.
def _action(scope) -> Action | None:
    if not is_api_path(scope):
        return None
    return registry().resolve(scope["path"].removeprefix(scope.get("root_path", "")).removeprefix("/v1").strip("/")).action


def takes_uploads(scope) -> bool:
    """Whether the route takes large bodies (a registry Action with `upload` or `large_body`), for the larger limit."""
    action = _action(scope)
    return action is not None and (action.upload or action.large_body)


def refusal_body(scope, error: ApiError) -> bytes:
    """A refusal in the route's own error shape (Anthropic's on its routes)."""
    action = _action(scope)
    if action is not None and action.error_response is not None:
        return bytes(action.error_response(error).content)
    return orjson.dumps(error.body())


limited = BodyLimitMiddleware(by_path, settings.CITY_MAX_BODY_BYTES, settings.CITY_MAX_UPLOAD_BYTES, takes_uploads, refusal_body)
application = WithInvalidationListener(ProtocolTypeRouter({"http": limited}))

# What the apps start with each server process (the ledger's keeper, say): here, because only a server
# imports this module (Daphne, and uvicorn in each worker), not management commands or tests; once the
# app is built, because the last hook freezes the heap built so far (city/server_tuning.py).
for hook in settings.CITY_SERVER_STARTUP:
    import_string(hook)()
