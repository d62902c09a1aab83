from datetime import timedelta

from django.utils import timezone

from city.tests.test_admin_pages import RAW_TOKEN, AdminPages
from studios import operations
from studios.models import Studio, UserToken
from studios.testing import CityTestCase

TOKENS = "/admin/studios/usertoken/"


class IssueTokenTests(AdminPages, CityTestCase):
    def issue(self, **fields: str):
        data = {"studio": self.alice_studio.id, "name": "dana laptop", "expires_at_0": "", "expires_at_1": "", **fields}
        return self.submit(TOKENS + "add/", data)

    def test_the_issue_form_takes_studio_name_and_expiry(self) -> None:
        response = self.page(TOKENS + "add/", {"studio": self.alice_studio.id})
        self.assertContains(response, 'name="studio"')
        self.assertContains(response, f'value="{self.alice_studio.id}"')  # prefilled from ?studio=
        self.assertContains(response, "vForeignKeyRawIdAdminField")  # a lookup, not a <select> of every studio
        self.assertContains(response, 'name="expires_at_0"')
        self.assertNotContains(response, 'name="digest"')
        self.assertNotContains(response, 'name="prefix"')
        self.assertNotContains(response, "_addanother")

    def test_issuing_shows_the_secret_once_on_the_answer_page(self) -> None:
        response = self.issue()
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "admin/studios/usertoken/secrets.html")
        [raw] = RAW_TOKEN.findall(response.content.decode())
        self.assertIn("no-store", response["Cache-Control"])
        self.assertContains(response, "this page is the only time City shows it")

        token = UserToken.objects.get(name="dana laptop")
        self.assertEqual(token.prefix, raw[:11])
        self.assertEqual(self.assertOk(self.get("/v1/studios/me", token=raw))["token"]["id"], token.id)
        [entry] = self.audit("studios/tokens/apply", token.id)
        self.assertEqual((entry.actor, entry.outcome), ("admin:root", "ok"))

        # Not in a message, a cookie or the session, and no later page shows it.
        self.assertEqual(self.messages_of(response), [])
        for cookie in response.cookies.values():
            self.assertNotIn(raw, cookie.value)
        self.assertNotIn(raw, str(self.client.session.items()))
        for url in (TOKENS, f"{TOKENS}{token.id}/change/", "/admin/city/auditentry/", f"/admin/city/auditentry/{entry.id}/change/"):
            page = self.page(url)
            self.assertNotContains(page, raw)
            self.assertNotContains(page, token.digest)
            self.assertContains(page, token.prefix if "usertoken" in url else token.id)

    def test_an_expiry_in_the_past_is_refused_beside_the_field(self) -> None:
        past = timezone.now() - timedelta(days=1)
        response = self.issue(expires_at_0=past.strftime("%Y-%m-%d"), expires_at_1=past.strftime("%H:%M:%S"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Choose a time in the future")
        self.assertFalse(UserToken.objects.filter(name="dana laptop").exists())

    def test_a_removed_studio_gets_no_token(self) -> None:
        Studio.objects.filter(id=self.alice_studio.id).update(status="removed")
        response = self.issue()
        self.assertContains(response, "No such studio, or it is removed")
        self.assertFalse(UserToken.objects.filter(name="dana laptop").exists())


class TokenListTests(AdminPages, CityTestCase):
    def test_the_list_shows_tokens_without_secrets(self) -> None:
        response = self.page(TOKENS)
        for text in (self.bob.prefix, "bob laptop", "Alice Studio", "active"):
            self.assertContains(response, text)
        self.assertNotContains(response, self.bob_token)
        self.assertNotContains(response, self.bob.digest)

    def test_a_token_page_is_read_only_and_never_shows_the_digest(self) -> None:
        response = self.page(f"{TOKENS}{self.bob.id}/change/")
        self.assertContains(response, self.bob.prefix)
        self.assertNotContains(response, self.bob.digest)
        self.assertNotContains(response, "digest")
        self.assertNotContains(response, 'name="_save"')
        self.assertNotContains(response, 'name="prefix"')

    def test_it_filters_active_revoked_and_expired(self) -> None:
        expired, _ = operations.issue_token(
            self.alice_studio.id, "old ci", expires_at=timezone.now() + timedelta(days=1), actor="test-admin"
        )
        UserToken.objects.filter(id=expired.id).update(expires_at=timezone.now() - timedelta(hours=1))
        operations.revoke_token(self.charlie.id, actor="test-admin")
        shown = {
            status: [t for t in ("bob laptop", "old ci", ">charlie<") if t in self.page(TOKENS, {"status": status}).content.decode()]
            for status in ("active", "revoked", "expired")
        }
        self.assertEqual(shown, {"active": ["bob laptop"], "revoked": [">charlie<"], "expired": ["old ci"]})

    def test_it_searches_by_prefix_name_token_id_and_studio_id(self) -> None:
        searches = {
            self.bob.prefix[:6]: "bob laptop",
            self.bob.prefix: "bob laptop",
            "laptop": "bob laptop",
            self.charlie.id: ">charlie<",
            self.charlie_studio.id: ">charlie<",
        }
        for term, expected in searches.items():
            with self.subTest(term=term):
                content = self.page(TOKENS, {"q": term}).content.decode()
                self.assertIn(expected, content)
                self.assertNotIn(">charlie<" if expected == "bob laptop" else "bob laptop", content)
        # A prefix is case-sensitive on every database (SQLite's LIKE would ignore case).
        self.assertNotIn("bob laptop", self.page(TOKENS, {"q": "ub_" + self.bob.prefix[3:].swapcase()}).content.decode())

    def test_only_the_creation_column_sorts(self) -> None:
        response = self.page(TOKENS, {"o": "1"})  # prefix, asked by hand
        self.assertEqual(response.context["cl"].get_ordering(response.wsgi_request, UserToken.objects.all()), ["-pk"])
        oldest_first = self.page(TOKENS, {"o": "6"})  # "created", the sixth column
        self.assertEqual(oldest_first.context["cl"].get_ordering(oldest_first.wsgi_request, UserToken.objects.all())[0], "id")

    def test_the_list_runs_four_queries_whatever_its_length(self) -> None:
        for i in range(30):
            studio = Studio.objects.create(name=f"Studio {i}")
            operations.issue_token(studio.id, f"token {i}", expires_at=None, actor="test-admin")
        with self.assertNumQueries(4):  # session, user, capped count, one page of tokens joined to their studios
            response = self.page(TOKENS)
        self.assertContains(response, "Studio 29")

    def test_tokens_cannot_be_deleted(self) -> None:
        self.page(f"{TOKENS}{self.bob.id}/delete/", status=403)


class RevokeAndRotateTests(AdminPages, CityTestCase):
    def test_revoke_is_a_bulk_action_through_revoke_token(self) -> None:
        self.assertOk(self.get("/v1/studios/me", token=self.bob_token))  # cached as valid in this process
        response = self.run_action(TOKENS, "revoke_selected", [self.bob.id, self.charlie.id])
        self.assertEqual(response.status_code, 302)
        self.assertIn("2 token(s) revoked; every City process refuses them within seconds.", self.messages_of(response))
        self.assertEqual(UserToken.objects.filter(revoked_at__isnull=False).count(), 2)
        entries = self.audit("studios/tokens/revoke")
        self.assertEqual(
            {(e.actor, e.target, e.outcome) for e in entries}, {("admin:root", self.bob.id, "ok"), ("admin:root", self.charlie.id, "ok")}
        )
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error", "token_revoked")

    def test_rotate_shows_each_new_secret_once(self) -> None:
        response = self.run_action(TOKENS, "rotate_selected", [self.bob.id, self.charlie.id])
        self.assertEqual(response.status_code, 200)
        self.assertTemplateUsed(response, "admin/studios/usertoken/secrets.html")
        self.assertIn("no-store", response["Cache-Control"])
        secrets = RAW_TOKEN.findall(response.content.decode())
        self.assertEqual(len(secrets), 2)
        self.assertNotIn(self.bob_token, secrets)
        self.assertError(self.get("/v1/studios/me", token=self.bob_token), 401, "authentication_error")
        studios_seen = {self.assertOk(self.get("/v1/studios/me", token=raw))["studio"]["id"] for raw in secrets}
        self.assertEqual(studios_seen, {self.alice_studio.id, self.charlie_studio.id})
        self.assertEqual([e.actor for e in self.audit("studios/tokens/rotate")], ["admin:root", "admin:root"])
        for raw in secrets:
            self.assertNotIn(raw, str(self.audit("studios/tokens/rotate")[0].detail))
            self.assertNotContains(self.page(TOKENS), raw)

    def test_rotating_a_revoked_token_is_an_error_message_and_a_failed_audit_entry(self) -> None:
        operations.revoke_token(self.charlie.id, actor="test-admin")
        response = self.run_action(TOKENS, "rotate_selected", [self.charlie.id])
        self.assertEqual(response.status_code, 302)
        self.assertIn(f"Token {self.charlie.id} is revoked; issue a new token instead.", self.messages_of(response))
        [entry] = self.audit("studios/tokens/rotate")
        self.assertEqual((entry.actor, entry.target, entry.outcome), ("admin:root", self.charlie.id, "409 token_revoked"))

    def test_one_refusal_does_not_stop_the_others(self) -> None:
        operations.revoke_token(self.charlie.id, actor="test-admin")
        response = self.run_action(TOKENS, "rotate_selected", [self.bob.id, self.charlie.id])
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(RAW_TOKEN.findall(response.content.decode())), 1)
        self.assertContains(response, f"Token {self.charlie.id} is revoked")  # the message, on the same page
        self.assertEqual(sorted(e.outcome for e in self.audit("studios/tokens/rotate")), ["409 token_revoked", "ok"])

    def test_an_action_touches_at_most_five_hundred_rows(self) -> None:
        studio = self.alice_studio
        UserToken.objects.bulk_create(
            UserToken(studio=studio, name=f"bulk {i}", prefix=f"ub_bulk{i:04d}", digest=f"{i:064x}") for i in range(501)
        )
        response = self.submit(TOKENS, {"action": "revoke_selected", "select_across": "1", "index": 0, "_selected_action": [self.bob.id]})
        self.assertIn(
            "Select at most 500 tokens per action; narrow the list with a filter or a search first. Nothing was changed.",
            self.messages_of(response),
        )
        self.assertFalse(UserToken.objects.filter(revoked_at__isnull=False).exists())
