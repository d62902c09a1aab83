"""Property-based: generated bad input at every declared route, as guest, user and admin, GET and
POST, answers 2xx or a 4xx in the OpenAI error shape, never a 5xx (on SQLite and on PostgreSQL alike)."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from city.tests import fuzz
from studios.testing import CityTestCase

ROUTES = fuzz.routes()
NAMES, VALUES = fuzz.known_words()
# Each route's own words (its fields, its named values), else everyone's.
WORDS = {path: fuzz.route_words(action) for path, action in ROUTES}
WORDS = {path: (names or NAMES, values or VALUES) for path, (names, values) in WORDS.items()}
POST_ROUTES = [(path, action) for path, action in ROUTES if "POST" in action.methods]
GET_ROUTES = [(path, action) for path, action in ROUTES if "GET" in action.methods]
# Mostly what each route takes (so that bad values reach its handler), sometimes anything.
POST_ROUTE = st.sampled_from(POST_ROUTES * 9 + ROUTES)
GET_ROUTE = st.sampled_from(GET_ROUTES * 9 + ROUTES)
WHO = st.sampled_from(["admin"] * 5 + ["user"] * 3 + ["guest"] * 2)
CONTENT_TYPES = ["application/json"] * 16 + ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]


class FuzzEveryRouteTests(CityTestCase, HypothesisTestCase):
    """No provider key is set: AI models are not callable, so nothing leaves the machine; the request
    shapes are still checked (before the model is looked up). Admin calls really mutate (a 2xx is
    fine); each example runs in its own transaction, rolled back after it."""

    def caller(self, who: str) -> str | None:
        return {"guest": None, "user": self.bob_token, "admin": self.admin_key}[who]

    def send(self, method: str, route: str, who: str, payload: Any, content_type: str = "application/json") -> Any:
        token = self.caller(who)
        extra: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        with self.captureOnCommitCallbacks(execute=True):
            if method == "GET":
                return self.client.get(f"{route}?{payload}", **extra)
            return self.client.generic("POST", route, payload, content_type=content_type, **extra)

    @settings(fuzz.FUZZ_SETTINGS, max_examples=300)
    @given(route=POST_ROUTE, subpath=st.one_of(st.just(""), st.text(min_size=1, max_size=8)), who=WHO, data=st.data())
    def test_post_bodies(self, route: tuple[str, Any], subpath: str, who: str, data: st.DataObject) -> None:
        path, action = route
        if action.subpaths and subpath:
            path = f"{path}/{subpath}"
        body = data.draw(fuzz.bodies(*WORDS[route[0]]), label="body")
        content_type = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
        fuzz.assert_contract(self, route[0], self.send("POST", path, who, body, content_type))

    @settings(fuzz.FUZZ_SETTINGS, max_examples=300)
    @given(route=GET_ROUTE, who=WHO, data=st.data())
    def test_get_queries(self, route: tuple[str, Any], who: str, data: st.DataObject) -> None:
        query = data.draw(fuzz.query_strings(*WORDS[route[0]]), label="query")
        fuzz.assert_contract(self, route[0], self.send("GET", route[0], who, query))

    def test_the_fuzzer_knows_the_routes_and_their_fields(self) -> None:
        # Guard against a fuzzer that silently lost what it aims at.
        paths = {path for path, _ in ROUTES}
        self.assertTrue({"/v1/studios/pause", "/v1/env/upsert", "/v1/chat/completions", "/v1/accounts/login"} <= paths)
        self.assertTrue({"studio_id", "token_id", "key", "messages", "tool_calls", "function", "modalities"} <= set(NAMES))
        self.assertTrue({"assistant", "function", "image_url"} <= set(VALUES))
