"""Stored responses (aihub/responses_store.py): kept by `save`, read back through City's routes with
the official openai SDK (`responses.retrieve`, `responses.delete`, `responses.input_items.list`,
`responses.cancel`), per studio and for CITY_RESPONSES_RETENTION_DAYS; the conversation a
`previous_response_id` names (`history`); `manage.py purge_responses`.

Rows are written with `save` directly, as POST /v1/responses writes them, so these tests need no upstream."""

import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import openai
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import TestCase, override_settings
from django.utils import timezone

from aihub import responses_store
from aihub.models_responses import StoredResponse
from aihub.tests.live import AiLiveTestCase
from aihub.tests.openai_schema import SCHEMA_PATH, validate
from city.errors import ApiError
from city.ids import new_id
from city.tests.test_admin_pages import AdminPages
from studios.models import Studio

save = async_to_sync(responses_store.save)
history = async_to_sync(responses_store.history)


def answer(text: str, *, tool_call: bool = False) -> dict[str, Any]:
    """A finished response object as POST /v1/responses answers it (valid against OpenAI's `Response`)."""
    output: list[dict[str, Any]] = [
        {
            "type": "message",
            "id": new_id("msg"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }
    ]
    if tool_call:
        output.append(
            {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
                "status": "completed",
            }
        )
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": 1_780_000_000,
        "status": "completed",
        "model": "deepseek-v4-flash",
        "output": output,
        "usage": {
            "input_tokens": 11,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 18,
        },
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "store": True,
    }


# One request's input as a client may send it: a system message, a user message as a string and as
# parts (an image URL among them), the output of a tool call.
INPUT: list[dict[str, Any]] = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "Weather in Oslo?"},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "And this:"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
        ],
    },
    {"type": "function_call_output", "call_id": "call_0", "output": "12°C"},
]


class StoredResponsesThroughCityTests(AiLiveTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(self.sdk.close)

    def stored(self, studio_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        response = answer("Sunny, 12°C.", **kwargs)
        save(studio_id or self.studio["id"], self.token_id, response, INPUT, None)
        return response

    def test_routes(self) -> None:
        # One test (one database flush) for three sets of checks: the suite is near its time budget.
        self.retrieve_list_input_items_cancel_and_delete()
        self.input_items_of_a_continued_conversation()
        self.another_studios_and_expired_responses_are_not_found()

    def input_items_of_a_continued_conversation(self) -> None:
        """A response made with previous_response_id lists the earlier turns' items before its own."""
        first, second = answer("One."), answer("Two.")
        save(self.studio["id"], self.token_id, first, "Count with me.", None)
        save(self.studio["id"], self.token_id, second, [{"role": "user", "content": "Next?"}], first["id"])
        listed = self.ok(self.user.get(f"/v1/responses/{second['id']}/input_items", params={"order": "asc"}))
        validate(listed, "ResponseItemList")
        texts = [(item["role"], item["content"][0]["text"]) for item in listed["data"]]
        self.assertEqual(texts, [("user", "Count with me."), ("assistant", "One."), ("user", "Next?")])
        self.assertEqual(listed["data"][1], first["output"][0])
        self.assertEqual(
            [item.id for item in self.sdk.responses.input_items.list(second["id"], limit=1)], [i["id"] for i in listed["data"]][::-1]
        )
        # Once the first is deleted, only what is still kept is listed.
        self.sdk.responses.delete(first["id"])
        listed = self.ok(self.user.get(f"/v1/responses/{second['id']}/input_items"))
        self.assertEqual([item["content"][0]["text"] for item in listed["data"]], ["Next?"])
        self.sdk.responses.delete(second["id"])

    def retrieve_list_input_items_cancel_and_delete(self) -> None:
        response = self.stored(tool_call=True)
        rid = response["id"]

        raw = self.sdk.responses.with_raw_response.retrieve(rid)
        self.assertEqual(raw.http_response.json(), response)
        validate(raw.http_response.json(), "Response")
        self.assertEqual(raw.parse().output_text, "Sunny, 12°C.")
        self.assertEqual(self.sdk.responses.retrieve(rid, include=["message.input_image.image_url"]).id, rid)

        # The input items, as OpenAI lists them: each with an id, newest first by default.
        listed = self.ok(self.user.get(f"/v1/responses/{rid}/input_items"))
        validate(listed, "ResponseItemList")
        newest_first = listed["data"]
        self.assertEqual([item["type"] for item in newest_first], ["function_call_output", "message", "message", "message"])
        self.assertEqual(newest_first[-1]["content"], [{"type": "input_text", "text": "Be brief."}])
        self.assertEqual(newest_first[-2]["content"], [{"type": "input_text", "text": "Weather in Oslo?"}])
        self.assertEqual(newest_first[1]["content"], INPUT[2]["content"])
        self.assertEqual(
            (listed["first_id"], listed["last_id"], listed["has_more"]), (newest_first[0]["id"], newest_first[-1]["id"], False)
        )
        ids = [item["id"] for item in newest_first]
        self.assertEqual(len(set(ids)), 4)
        # Pages of two, oldest first, through the SDK's own paging (`after`).
        pages = self.sdk.responses.input_items.list(rid, order="asc", limit=2)
        self.assertEqual([item.id for item in pages.data], ids[::-1][:2])
        self.assertTrue(pages.has_more)
        self.assertEqual([item.id for item in pages], ids[::-1])  # iterating fetches the next page
        for query, expected in [
            ({"after": ids[0]}, ids[1:]),
            ({"after": ids[0], "limit": "2"}, ids[1:3]),
            ({"before": ids[3], "limit": "2"}, ids[1:3]),
            ({"before": ids[3], "after": ids[0]}, ids[1:3]),
            ({"order": "asc", "before": ids[1]}, ids[::-1][:2]),
            ({"after": ids[3]}, []),
            ({"include[]": "message.input_image.image_url"}, ids),
        ]:
            with self.subTest(query=query):
                page = self.ok(self.user.get(f"/v1/responses/{rid}/input_items", params=query))
                self.assertEqual([item["id"] for item in page["data"]], expected)
        self.assertEqual(self.ok(self.user.get(f"/v1/ai/responses/{rid}/input_items"))["data"], newest_first)  # the /v1/ai route too
        self.assertEqual(
            self.ok(self.user.get(f"/v1/responses/{rid}/input_items", params={"limit": "3", "after": ids[0]}))["has_more"], False
        )

        # What these routes cannot take is a 400 naming the parameter, in OpenAI's shape.
        for path, query, param in [
            (f"{rid}/input_items", {"limit": "0"}, "limit"),
            (f"{rid}/input_items", {"limit": "101"}, "limit"),
            (f"{rid}/input_items", {"order": "sideways"}, "order"),
            (f"{rid}/input_items", {"after": "msg_nope"}, "after"),
            (f"{rid}/input_items", {"include[]": "everything"}, "include"),
            (f"{rid}/input_items", {"page": "2"}, "page"),
            (rid, {"stream": "true"}, "stream"),
            (rid, {"stream": "maybe"}, "stream"),
            (rid, {"include": "bogus"}, "include"),
        ]:
            with self.subTest(path=path, query=query):
                refused = self.user.get(f"/v1/responses/{path}", params=query)
                self.assertEqual(refused.status_code, 400, refused.text)
                self.assertEqual(refused.json()["error"]["param"], param)
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.responses.input_items.list(rid, order="asc", limit=500)
        self.assertIn("limit", str(caught.exception))
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.responses.retrieve(rid, include=["message.input_image.image_url", "everything"])  # type: ignore[list-item]
        self.assertIn("'everything'", str(caught.exception))

        # Cancel: City runs no background responses, so a stored one has finished and cannot be.
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk.responses.cancel(rid)
        body = caught.exception.body
        assert isinstance(body, dict)
        self.assertEqual(body["code"], "not_cancellable")
        self.assertIn("background", body["message"])
        with self.assertRaises(openai.NotFoundError):
            self.sdk.responses.cancel(new_id("resp"))

        # Delete answers OpenAI's deleted object (the keys and types of its documented example).
        deleted = self.sdk.responses.with_raw_response.delete(rid)
        self.assertEqual(deleted.http_response.json(), {"id": rid, "object": "response", "deleted": True})
        example = json.loads(SCHEMA_PATH.read_text())["x-endpoints"]["DELETE /responses/{response_id}"]["responses"]["200"]["example"]
        self.assertEqual({k: type(v) for k, v in deleted.http_response.json().items()}, {k: type(v) for k, v in example.items()})
        self.assertFalse(StoredResponse.objects.filter(pk=rid).exists())
        for gone in (
            lambda: self.sdk.responses.retrieve(rid),
            lambda: self.sdk.responses.delete(rid),
            lambda: self.sdk.responses.input_items.list(rid),
            lambda: self.sdk.responses.cancel(rid),
        ):
            with self.assertRaises(openai.NotFoundError):
                gone()

    def another_studios_and_expired_responses_are_not_found(self) -> None:
        other_studio = self.ok(self.admin.post("/v1/studios/create", json={"name": "Other Games"}))
        theirs = self.stored(other_studio["id"])["id"]
        expired = self.stored()["id"]
        StoredResponse.objects.filter(pk=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
        for rid in (theirs, expired, "resp_never_made"):
            routes: list[tuple[str, Callable[[str], Any]]] = [
                ("retrieve", self.sdk.responses.retrieve),
                ("delete", self.sdk.responses.delete),
                ("input_items", self.sdk.responses.input_items.list),
                ("cancel", self.sdk.responses.cancel),
            ]
            for name, use in routes:
                with self.subTest(rid=rid, route=name), self.assertRaises(openai.NotFoundError) as caught:
                    use(rid)
                self.assertIn("not found", str(caught.exception))
        self.assertTrue(StoredResponse.objects.filter(pk=theirs).exists())  # their DELETE did nothing
        # An id no response can have (PostgreSQL refuses a NUL in a query's text) is not found either.
        for odd in ("resp_%00x", "x" * 300):
            with self.subTest(odd=odd[:20]):
                self.assertEqual(self.user.get(f"/v1/responses/{odd}").status_code, 404)
                self.assertEqual(self.user.delete(f"/v1/responses/{odd}").status_code, 404)
        # The admin credential reads any studio's, naming it.
        admin_read = self.admin.get(f"/v1/responses/{theirs}", params={"studio_id": other_studio["id"]})
        self.assertEqual(self.ok(admin_read)["id"], theirs)
        self.assertEqual(httpx.get(f"{self.city.url}/v1/responses/{theirs}").status_code, 401)

        out = io.StringIO()
        call_command("purge_responses", stdout=out)
        self.assertEqual(out.getvalue().strip(), "stored responses: 1 deleted")
        self.assertEqual(set(StoredResponse.objects.values_list("pk", flat=True)), {theirs})  # the first part's was deleted


class HistoryAndSaveTests(TestCase):
    def setUp(self) -> None:
        self.studio = Studio.objects.create(name="Acme Games")
        self.other = Studio.objects.create(name="Other Games")

    def test_history_is_the_conversation_in_order(self) -> None:
        first, second, third = answer("One."), answer("Two.", tool_call=True), answer("Three.")
        save(self.studio.id, None, first, "Count with me.", None)
        save(self.studio.id, None, second, [{"role": "user", "content": "Next?"}], first["id"])
        tool_output = {"type": "function_call_output", "call_id": "call_1", "output": "cold"}
        save(self.studio.id, None, third, [tool_output], second["id"])

        items = history(self.studio.id, third["id"])
        self.assertEqual(
            [(item["type"], item.get("role")) for item in items],
            [
                ("message", "user"),
                ("message", "assistant"),
                ("message", "user"),
                ("message", "assistant"),
                ("function_call", None),
                ("function_call_output", None),
                ("message", "assistant"),
            ],
        )
        self.assertEqual(items[0]["content"], [{"type": "input_text", "text": "Count with me."}])
        self.assertEqual(items[1:2], first["output"])
        self.assertEqual(items[3:5], second["output"])
        self.assertEqual({k: items[5][k] for k in tool_output}, tool_output)
        self.assertEqual(history(self.studio.id, first["id"]), items[:2])
        for item in items:
            validate(
                {"object": "list", "data": [item], "first_id": item["id"], "last_id": item["id"], "has_more": False}, "ResponseItemList"
            )

        # Another studio's id, and a conversation with a deleted response in it, cannot be continued.
        for studio, asked, missing in [(self.other, third["id"], third["id"]), (self.studio, "resp_never_made", "resp_never_made")]:
            with self.subTest(asked=asked), self.assertRaises(ApiError) as caught:
                history(studio.id, asked)
            self.assertEqual((caught.exception.status, caught.exception.param), (400, "previous_response_id"))
            self.assertEqual(caught.exception.code, "previous_response_not_found")
            self.assertIn(f"'{missing}' not found", caught.exception.message)
        # A loop of rows (only a hand edit makes one) ends the walk instead of running forever.
        StoredResponse.objects.filter(pk=first["id"]).update(previous_response_id=third["id"])
        self.assertEqual(history(self.studio.id, third["id"]), items)
        StoredResponse.objects.filter(pk=first["id"]).update(previous_response_id="")
        # An expired or deleted response in the middle of the conversation breaks it.
        for end in ("expire", "delete"):
            rows = StoredResponse.objects.filter(pk=second["id"])
            if end == "expire":
                rows.update(expires_at=timezone.now())
            else:
                rows.delete()
            with self.subTest(end=end), self.assertRaises(ApiError) as caught:
                history(self.studio.id, third["id"])
            self.assertEqual((caught.exception.status, caught.exception.code), (400, "previous_response_not_found"))
            self.assertIn(f"continues response '{second['id']}'", caught.exception.message)

    @override_settings(CITY_RESPONSES_RETENTION_DAYS=7)
    def test_retention_and_what_is_kept(self) -> None:
        response = answer("Nul\x00here.")
        given = [{"role": "user", "content": "Hi"}]
        save(self.studio.id, "tok_1", response, given, None)
        row = StoredResponse.objects.get(pk=response["id"])
        self.assertEqual(row.expires_at - row.created_at, timedelta(days=7))
        self.assertEqual((row.token_id, row.model, row.previous_response_id), ("tok_1", "deepseek-v4-flash", ""))
        self.assertEqual(given, [{"role": "user", "content": "Hi"}])  # the caller's items are not changed
        # PostgreSQL's jsonb cannot keep a NUL, which an upstream's text may hold: it is replaced.
        self.assertEqual(row.response["output"][0]["content"][0]["text"], "Nul\ufffdhere.")

        StoredResponse.objects.filter(pk=response["id"]).update(expires_at=timezone.now())
        with self.assertRaises(ApiError) as caught:
            history(self.studio.id, response["id"])
        self.assertIn("kept 7 days", caught.exception.message)


class StoredResponsesAdminTests(AdminPages, TestCase):
    def test_listed_read_only_without_contents(self) -> None:
        studio = Studio.objects.create(name="Acme Games")
        response = answer("A private answer.")
        save(studio.id, None, response, "A private question.", None)
        listing = self.page("/admin/aihub/storedresponse/", {"studio_id": studio.id}).content.decode()
        self.assertIn(response["id"], listing)
        detail = self.page(f"/admin/aihub/storedresponse/{response['id']}/change/").content.decode()
        self.assertIn("deepseek-v4-flash", detail)
        for page in (listing, detail):
            self.assertNotIn("A private", page)
        self.page("/admin/aihub/storedresponse/add/", status=403)
