"""NUL characters, which PostgreSQL cannot store, are refused in every input with a 400 naming the field."""

import json
from typing import Any

import orjson

from city import storable
from city.errors import ApiError
from city.models import AuditEntry, EnvVar
from city.tests.test_admin_pages import AdminPages
from studios.models import Studio, UserToken
from studios.testing import CityTestCase

NUL = "a\x00b"


class NulInActionInputTests(CityTestCase):
    """Each of these answered 500 (DataError) on PostgreSQL before the dispatcher refused NUL."""

    def admin_actions(self) -> list[tuple[str, dict[str, object], str]]:
        studio, token = self.alice_studio.id, self.bob.id
        return [
            ("/v1/env/upsert", {"key": "OPENAI_API_KEY", "value": NUL}, "value"),
            ("/v1/env/upsert", {"key": NUL, "value": "x"}, "key"),
            ("/v1/env/remove", {"key": NUL}, "key"),
            ("/v1/env/import", {"content": f"OPENAI_API_KEY={NUL}"}, "content"),
            ("/v1/studios/create", {"name": NUL}, "name"),
            ("/v1/studios/pause", {"studio_id": NUL}, "studio_id"),
            ("/v1/studios/activate", {"studio_id": NUL}, "studio_id"),
            ("/v1/studios/remove", {"studio_id": NUL}, "studio_id"),
            ("/v1/studios/tokens/apply", {"studio_id": studio, "name": NUL}, "name"),
            ("/v1/studios/tokens/revoke", {"token_id": NUL}, "token_id"),
            ("/v1/studios/tokens/rotate", {"token_id": token + "\x00"}, "token_id"),
            ("/v1/accounts/create", {"studio_id": studio, "email": "a@example.com", "display_name": NUL}, "display_name"),
            ("/v1/accounts/disable", {"account_id": NUL}, "account_id"),
            ("/v1/accounts/enable", {"account_id": NUL}, "account_id"),
            ("/v1/accounts/settings", {"studio_id": NUL, "self_registration": True}, "studio_id"),
        ]

    def test_every_admin_action_refuses_a_nul_naming_the_field_and_changes_nothing(self) -> None:
        studios, tokens, audit = Studio.objects.count(), UserToken.objects.count(), AuditEntry.objects.count()
        for route, body, field in self.admin_actions():
            with self.subTest(route=route, field=field):
                error = self.assertError(self.admin_post(route, body), 400, "invalid_request_error", "invalid_characters", param=field)
                self.assertIn(field, error["message"])
                self.assertIn("NUL", error["message"])
        self.assertEqual((Studio.objects.count(), UserToken.objects.count()), (studios, tokens))
        # The audit log records each refusal, with no NUL in what it stores.
        self.assertEqual(AuditEntry.objects.count(), audit + len(self.admin_actions()))
        self.assertFalse([target for target in AuditEntry.objects.values_list("target", flat=True) if "\x00" in target])

    def test_guest_and_user_routes_refuse_it_too(self) -> None:
        self.assertError(
            self.post("/v1/accounts/login", {"studio_id": self.alice_studio.id, "email": NUL, "password": "x"}),
            400,
            "invalid_request_error",
            "invalid_characters",
            param="email",
        )
        self.assertError(
            self.post("/v1/accounts/register", {"studio_id": self.alice_studio.id, "email": "a@b.co", "password": NUL}),
            400,
            "invalid_request_error",
            "invalid_characters",
            param="password",
        )
        self.assertError(
            self.get("/v1/accounts/oauth/callback", {"code": NUL, "state": "s"}),
            400,
            "invalid_request_error",
            "invalid_characters",
            param="code",
        )

    def test_a_query_parameter_with_a_nul_is_named(self) -> None:
        for params, field in (({"search": NUL}, "search"), ({"status": "active", "cursor": NUL}, "cursor")):
            with self.subTest(field=field):
                self.assertError(
                    self.admin_get("/v1/studios/list", params), 400, "invalid_request_error", "invalid_characters", param=field
                )
        response = self.admin_get("/v1/audit/list?action=a&action=b%00c")  # any of a repeated parameter's values
        self.assertError(response, 400, "invalid_request_error", "invalid_characters", param="action")
        response = self.admin_get("/v1/audit/list?a%00b=1")
        self.assertError(response, 400, "invalid_request_error", "invalid_characters", param="a\\u0000b")

    def test_nested_strings_and_keys_are_named_by_their_path(self) -> None:
        body: dict[str, Any] = {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": [{"type": "text", "text": NUL}]}],
        }
        error = self.assertError(
            self.post("/v1/chat/completions", body, token=self.bob_token), 400, "invalid_request_error", "invalid_characters"
        )
        self.assertEqual(error["param"], "messages[1].content[0].text")
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": {"k\x00": "v"}}
        error = self.assertError(
            self.post("/v1/chat/completions", body, token=self.bob_token), 400, "invalid_request_error", "invalid_characters"
        )
        self.assertEqual(error["param"], "metadata.k\\u0000")

    def test_lone_surrogates_never_reach_the_database(self) -> None:
        # PostgreSQL refuses them too; orjson refuses them in JSON, and Django decodes a query's
        # UTF-8-encoded surrogate as replacement characters.
        for raw in (b'{"name": "\\ud800"}', b'{"name": "x\\udc00"}', b'{"name": "\xed\xa0\x80"}'):
            with self.subTest(raw=raw):
                self.assertError(self.admin_post("/v1/studios/create", raw=raw), 400, "invalid_request_error", "invalid_json")
        self.assertEqual(self.assertOk(self.admin_get("/v1/studios/list?search=%ED%A0%80"))["items"], [])
        self.assertEqual(Studio.objects.count(), 2)

    def test_the_text_backslash_u0000_is_not_a_nul(self) -> None:
        # The JSON "\\u0000" is a backslash followed by "u0000": six ordinary characters, stored as they are.
        raw = b'{"name": "literally \\\\u0000"}'
        self.assertEqual(orjson.loads(raw)["name"], "literally \\u0000")
        studio = self.assertOk(self.admin_post("/v1/studios/create", raw=raw))
        self.assertEqual(studio["name"], "literally \\u0000")


class StorableCheckTests(CityTestCase):
    def test_a_body_without_the_escape_is_not_walked(self) -> None:
        # A NUL in the parsed value that the body does not show cannot happen; the byte search decides alone.
        storable.check_json_body(b"{}", {"x": "\x00"})
        with self.assertRaises(ApiError) as caught:
            storable.check_json_body(b'{"x": "\\u0000"}', {"x": "\x00"})
        self.assertEqual(caught.exception.param, "x")

    def test_a_nul_at_the_bottom_of_deep_nesting_is_found(self) -> None:
        # As deep as orjson parses (1024), past Python's recursion limit: the walk keeps its own stack.
        body = b'{"a": ' + b"[" * 1000 + b'"\\u0000"' + b"]" * 1000 + b"}"
        with self.assertRaises(ApiError) as caught:
            storable.check_json_body(body, orjson.loads(body))
        self.assertEqual(caught.exception.param, "a" + "[0]" * 1000)

    def test_json_nested_deeper_than_city_passes_on_is_refused_naming_it(self) -> None:
        # orjson parses 1024 levels but writes 254: such a body failed (500) when an adapter sent it on.
        deep: Any = 1
        for _ in range(300):
            deep = [deep]
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_k": deep}
        raw = json.dumps(body).encode()  # orjson will not write it
        error = self.assertError(self.post("/v1/chat/completions", raw=raw, token=self.bob_token), 400, "invalid_request_error", "too_deep")
        self.assertTrue(error["param"].startswith("top_k[0][0]"))
        # As deep as MAX_DEPTH passes the check (and is refused for its type, not its depth).
        fine: Any = 1
        for _ in range(storable.MAX_DEPTH - 1):
            fine = [fine]
        error = self.assertError(self.admin_post("/v1/studios/create", {"name": fine}), 400, "invalid_request_error")
        self.assertNotEqual(error["code"], "too_deep")


class NulOnBrowserPagesTests(AdminPages, CityTestCase):
    """The admin put these straight into queries: each answered 500 (DataError) on PostgreSQL."""

    def test_the_admin_refuses_a_nul_in_the_path_the_query_and_a_posted_form(self) -> None:
        self.client.raise_request_exception = False
        for url, param in (
            (f"/admin/studios/studio/{NUL}/change/", None),
            (f"/admin/studios/studio/?status__exact={NUL}", "status__exact"),
            (f"/admin/accounts/account/?status__exact={NUL}", "status__exact"),
            (f"/admin/city/auditentry/?action={NUL}", "action"),
        ):
            with self.subTest(url=url):
                self.assertError(self.client.get(url), 400, "invalid_request_error", "invalid_characters", param=param)
        EnvVar.objects.create(key="OPENAI_API_KEY", ciphertext="not-a-real-token")
        response = self.submit("/admin/city/envvar/", {"action": "delete_selected", "_selected_action": [NUL], "index": 0, "post": "yes"})
        self.assertError(response, 400, "invalid_request_error", "invalid_characters", param="_selected_action")
        self.assertEqual(EnvVar.objects.count(), 1)

    def test_pages_without_a_nul_still_answer(self) -> None:
        self.page("/admin/studios/studio/", {"status__exact": "active"})
        self.page(f"/admin/studios/studio/{self.alice_studio.id}/change/")
