"""Body limits on the protocol routes, through the ASGI application as servers call it: a coding
agent's conversation (over CITY_MAX_BODY_BYTES) reaches chat completions, Responses and Messages;
a body over CITY_MAX_UPLOAD_BYTES is refused before it is read, in the route's own error shape."""

import httpx
from django.conf import settings
from django.test import SimpleTestCase

from city.asgi import application

HOST = "http://127.0.0.1"
ANTHROPIC_ROUTES = ("/v1/messages", "/v1/ai/messages", "/v1/messages/count_tokens")
OPENAI_ROUTES = ("/v1/chat/completions", "/v1/responses", "/v1/ai/responses")


async def post(path: str, size: int, declared: int | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Content-Length": str(declared if declared is not None else size)}
    body = b'{"model": "' + b"x" * (size - 13) + b'"}'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url=HOST) as client:
        return await client.post(path, content=body, headers=headers)


class ProtocolBodyLimitTests(SimpleTestCase):
    async def test_a_conversation_over_the_usual_limit_reaches_the_route(self) -> None:
        size = settings.CITY_MAX_BODY_BYTES * 2
        for path in (*ANTHROPIC_ROUTES, *OPENAI_ROUTES):
            with self.subTest(path=path):
                response = await post(path, size)
                self.assertEqual(response.status_code, 401, response.text[:300])  # read, then refused for its missing key

    async def test_a_body_over_the_upload_limit_is_refused_in_the_routes_own_shape(self) -> None:
        declared = settings.CITY_MAX_UPLOAD_BYTES + 1
        for path in ANTHROPIC_ROUTES:
            with self.subTest(path=path):
                response = await post(path, 100, declared)
                self.assertEqual(response.status_code, 413)
                error = response.json()
                self.assertEqual(error["type"], "error")
                self.assertEqual(error["error"]["type"], "request_too_large")
                self.assertIn("CITY_MAX_UPLOAD_BYTES", error["error"]["message"])
        for path in OPENAI_ROUTES:
            with self.subTest(path=path):
                response = await post(path, 100, declared)
                self.assertEqual(response.status_code, 413)
                self.assertEqual(response.json()["error"]["code"], "body_too_large")
