"""GET /v1/reference: the API reference page, with only City's own static files (nothing from a CDN)."""

import re

from django.contrib.staticfiles import finders
from django.test import TestCase

from city.testing import ApiTestMixin

ATTRIBUTE_URL = re.compile(r"""\b(?:src|href|data-openapi-url)="([^"]*)\"""")


class ReferencePageTests(ApiTestMixin, TestCase):
    def test_the_page_uses_only_local_assets(self) -> None:
        response = self.get("/v1/reference")  # a guest may read it
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/html; charset=utf-8")
        html = response.content.decode()
        self.assertNotRegex(html, r"(?i)https?:|//[a-z0-9]")  # no absolute or protocol-relative URL at all
        urls = ATTRIBUTE_URL.findall(html)
        self.assertIn("/v1/openapi.json", urls)
        assets = [url for url in urls if url.startswith("/static/")]
        self.assertEqual(len(assets), 4, urls)  # Swagger UI's CSS, icon and bundle, and City's start-up script
        for url in assets:
            with self.subTest(asset=url):
                self.assertIsNotNone(finders.find(url.removeprefix("/static/")), f"{url} is in no installed app's static files")

    def test_its_policy_lets_the_browser_load_nothing_from_elsewhere(self) -> None:
        policy = self.get("/v1/reference")["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        self.assertEqual(directives["default-src"], "'none'")
        for name in ("script-src", "connect-src", "font-src"):
            self.assertEqual(directives[name], "'self'")
        self.assertEqual(directives["img-src"], "'self' data:")

    def test_the_start_up_script_turns_off_swagger_s_online_validator(self) -> None:
        path = finders.find("city/reference.js")
        assert isinstance(path, str)
        with open(path) as script:
            self.assertIn("validatorUrl: null", script.read())

    def test_the_document_link_is_the_openapi_route(self) -> None:
        self.assertOk(self.get("/v1/openapi.json"))
        self.assertEqual(self.get("/v1/reference").content, self.get("/v1/system/reference").content)
