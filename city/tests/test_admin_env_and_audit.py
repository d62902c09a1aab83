from datetime import timedelta

from django.utils import timezone

from city import envops
from city.audit import record
from city.models import AuditEntry, EnvVar
from city.tests.test_admin_pages import AdminPages
from studios.testing import CityTestCase

ENV = "/admin/city/envvar/"
AUDIT = "/admin/city/auditentry/"
SECRET_VALUE = "sk-test-0123456789abcdef-a1b2"


class EnvAdminTests(AdminPages, CityTestCase):
    def add(self, key: str = "DEEPSEEK_API_KEY", value: str = SECRET_VALUE, description: str = "DeepSeek key"):
        return self.submit(ENV + "add/", {"key": key, "value": value, "description": description})

    def test_adding_a_variable_calls_upsert_env(self) -> None:
        response = self.add()
        self.assertEqual(response.status_code, 302)
        row = EnvVar.objects.get(key="DEEPSEEK_API_KEY")
        self.assertEqual(envops.value_of(row), SECRET_VALUE)
        self.assertNotIn(SECRET_VALUE, row.ciphertext)
        self.assertEqual((row.description, row.updated_by), ("DeepSeek key", "admin:root"))
        [entry] = self.audit("env/upsert", "DEEPSEEK_API_KEY")
        self.assertEqual((entry.actor, entry.outcome), ("admin:root", "ok"))
        self.assertNotIn(SECRET_VALUE, str(entry.detail))

    def test_the_list_masks_values(self) -> None:
        self.add()
        response = self.page(ENV)
        self.assertContains(response, "sk-…a1b2")
        self.assertContains(response, "DeepSeek key")
        self.assertContains(response, "admin:root")
        self.assertNotContains(response, SECRET_VALUE)

    def test_the_value_field_is_write_only(self) -> None:
        self.add()
        row = EnvVar.objects.get(key="DEEPSEEK_API_KEY")
        response = self.page(f"{ENV}{row.pk}/change/")
        self.assertContains(response, "sk-…a1b2")
        self.assertContains(response, '<input type="password" name="value"')
        self.assertNotContains(response, SECRET_VALUE)
        self.assertNotContains(response, row.ciphertext)

    def test_a_blank_value_keeps_the_current_one(self) -> None:
        self.add()
        row = EnvVar.objects.get(key="DEEPSEEK_API_KEY")
        self.submit(f"{ENV}{row.pk}/change/", {"value": "", "description": "Rotated monthly"})
        row.refresh_from_db()
        self.assertEqual((envops.value_of(row), row.description), (SECRET_VALUE, "Rotated monthly"))
        self.submit(f"{ENV}{row.pk}/change/", {"value": "sk-test-new-value-9999", "description": "Rotated monthly"})
        row.refresh_from_db()
        self.assertEqual(envops.value_of(row), "sk-test-new-value-9999")
        self.assertEqual(len(self.audit("env/upsert", "DEEPSEEK_API_KEY")), 3)

    def test_a_bad_key_or_a_missing_value_is_refused_beside_the_field(self) -> None:
        response = self.add(key="CITY_SECRET_KEY")
        self.assertContains(response, "CITY_SECRET_KEY is read at start-up only")
        response = self.add(key="lower-case")
        self.assertContains(response, "Keys are 1-128 characters")
        response = self.add(value="")
        self.assertContains(response, "Enter the value; it is required for a new variable.")
        self.assertFalse(EnvVar.objects.exists())
        self.assertEqual(self.audit("env/upsert"), [])

    def test_deleting_calls_remove_env(self) -> None:
        self.add()
        self.add(key="OPENAI_API_KEY")
        row = EnvVar.objects.get(key="DEEPSEEK_API_KEY")
        self.assertEqual(self.submit(f"{ENV}{row.pk}/delete/", {"post": "yes"}).status_code, 302)
        other = EnvVar.objects.get(key="OPENAI_API_KEY")
        confirmation = self.run_action(ENV, "delete_selected", [str(other.pk)])
        self.assertContains(confirmation, "Are you sure")
        self.assertTrue(EnvVar.objects.filter(key="OPENAI_API_KEY").exists())
        response = self.run_action(ENV, "delete_selected", [str(other.pk)], post="yes")
        self.assertIn("1 env variable(s) removed.", self.messages_of(response))
        self.assertFalse(EnvVar.objects.exists())
        self.assertEqual(
            [(e.actor, e.target) for e in self.audit("env/remove")], [("admin:root", "DEEPSEEK_API_KEY"), ("admin:root", "OPENAI_API_KEY")]
        )

    def test_a_refused_save_is_an_error_message_and_a_failed_audit_entry(self) -> None:
        # A row written before CITY_* keys became start-up only: upsert_env now refuses its key.
        row = EnvVar.objects.create(key="CITY_LEGACY_FLAG", ciphertext=envops._encrypt("on-value-1234"))
        response = self.submit(f"{ENV}{row.pk}/change/", {"value": "", "description": "x"})
        self.assertEqual(response.status_code, 302)
        self.assertIn(
            "key: CITY_LEGACY_FLAG is read at start-up only; set it in the process environment or .env.", self.messages_of(response)
        )
        [entry] = self.audit("env/upsert")
        self.assertEqual((entry.actor, entry.target, entry.outcome), ("admin:root", "CITY_LEGACY_FLAG", "400 invalid_key"))

        response = self.submit(f"{ENV}{row.pk}/delete/", {"post": "yes"})
        self.assertEqual(response.status_code, 302)
        self.assertTrue(EnvVar.objects.filter(key="CITY_LEGACY_FLAG").exists())
        self.assertEqual(self.audit("env/remove")[0].outcome, "400 invalid_key")

    def test_a_value_that_cannot_be_decrypted_is_replaced_by_typing_it_again(self) -> None:
        row = EnvVar.objects.create(key="OLD_KEY_VALUE", ciphertext="gAAAAABnot-a-fernet-token-under-this-key")
        self.assertContains(self.page(ENV), "cannot decrypt")
        response = self.submit(f"{ENV}{row.pk}/change/", {"value": "", "description": "x"})
        self.assertContains(response, "The stored value cannot be decrypted")
        self.assertContains(response, "enter the value again to replace it.")
        self.submit(f"{ENV}{row.pk}/change/", {"value": "sk-test-typed-again-0000", "description": "x"})
        self.assertEqual(envops.value_of(EnvVar.objects.get(key="OLD_KEY_VALUE")), "sk-test-typed-again-0000")

    def test_a_bulk_delete_reports_only_what_it_removed(self) -> None:
        self.add()
        legacy = EnvVar.objects.create(key="CITY_LEGACY_FLAG", ciphertext=envops._encrypt("on-value-1234"))
        ids = [str(legacy.pk), str(EnvVar.objects.get(key="DEEPSEEK_API_KEY").pk)]
        messages = self.messages_of(self.run_action(ENV, "delete_selected", ids, post="yes"))
        self.assertIn("1 env variable(s) removed.", messages)
        self.assertIn("key: CITY_LEGACY_FLAG is read at start-up only; set it in the process environment or .env.", messages)
        self.assertEqual(list(EnvVar.objects.values_list("key", flat=True)), ["CITY_LEGACY_FLAG"])

    def test_the_list_runs_four_queries(self) -> None:
        for i in range(5):
            envops.upsert_env(f"KEY_{i}", f"value-number-{i:04d}", description=None, actor="test-admin")
        with self.assertNumQueries(4):
            self.page(ENV)


class AuditAdminTests(AdminPages, CityTestCase):
    def test_the_log_lists_actor_action_target_time_and_outcome(self) -> None:
        response = self.page(AUDIT)
        for text in ("test-admin", "studios/create", self.alice_studio.id, "ok"):
            self.assertContains(response, text)

    def test_it_filters_by_action_and_outcome(self) -> None:
        record("admin:root", "studios/pause", target=self.alice_studio.id, outcome="409 studio_removed")
        by_action = self.page(AUDIT, {"action": "studios/tokens/apply"})
        self.assertContains(by_action, self.bob.id)
        self.assertNotContains(by_action, f">{self.alice_studio.id}<")
        failed = self.page(AUDIT, {"outcome": "failed"})
        self.assertContains(failed, "409 studio_removed")
        self.assertNotContains(failed, self.bob.id)
        self.assertNotContains(self.page(AUDIT, {"outcome": "ok"}), "409 studio_removed")
        self.assertContains(self.page(AUDIT), "studios/tokens/rotate")  # the filter offers every audited action

    def test_it_filters_by_time(self) -> None:
        old = record("admin", "env/upsert", target="OLD_KEY")
        AuditEntry.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=40))
        self.assertNotContains(self.page(AUDIT, {"within": "30d"}), "OLD_KEY")
        self.assertContains(self.page(AUDIT), "OLD_KEY")

    def test_it_searches_by_exact_target_or_actor(self) -> None:
        record("admin:root", "env/upsert", target="OPENAI_API_KEY")
        by_target = self.page(AUDIT, {"q": self.charlie.id})
        self.assertContains(by_target, self.charlie.id)
        self.assertNotContains(by_target, self.bob.id)
        by_actor = self.page(AUDIT, {"q": "admin:root"})
        self.assertContains(by_actor, "OPENAI_API_KEY")
        self.assertNotContains(by_actor, self.bob.id)
        record(self.bob.id, "studios/tokens/rotate", target="ANTHROPIC_API_KEY")  # bob's token as an actor too
        both = self.page(AUDIT, {"q": self.bob.id})
        self.assertEqual(
            {(e.actor, e.target) for e in both.context["cl"].result_list}, {("test-admin", self.bob.id), (self.bob.id, "ANTHROPIC_API_KEY")}
        )
        self.assertEqual(list(self.page(AUDIT, {"q": "admin:nobody"}).context["cl"].result_list), [])

    def test_newest_entries_come_first(self) -> None:
        record("admin:root", "env/upsert", target="NEWEST_KEY")
        content = self.page(AUDIT).content.decode()
        self.assertLess(content.index("NEWEST_KEY"), content.index(self.alice_studio.id))

    def test_entries_are_read_only(self) -> None:
        entry = AuditEntry.objects.first()
        assert entry is not None
        self.page(AUDIT + "add/", status=403)
        self.page(f"{AUDIT}{entry.id}/delete/", status=403)
        detail = self.page(f"{AUDIT}{entry.id}/change/")
        self.assertNotContains(detail, 'name="_save"')
        response = self.submit(f"{AUDIT}{entry.id}/change/", {"actor": "forged", "action": "x", "target": "", "outcome": "ok"})
        self.assertEqual(response.status_code, 403)
        self.assertNotContains(self.page(AUDIT), "delete_selected")
        entry.refresh_from_db()
        self.assertEqual(entry.actor, "test-admin")

    def test_the_log_runs_four_queries(self) -> None:
        for i in range(20):
            record("admin", "env/upsert", target=f"KEY_{i}")
        with self.assertNumQueries(4):
            self.page(AUDIT)
