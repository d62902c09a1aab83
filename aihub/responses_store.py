"""Stored responses of the Responses API (aihub/models_responses.py): `save` after a call, the
conversation behind a `previous_response_id` (`history`), and the routes that read them:
`GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`, and
`POST /v1/responses/{id}/cancel`, which City answers with a 400 since it runs no background responses.

A response belongs to its studio: another studio's id, a deleted one and an expired one (older than
CITY_RESPONSES_RETENTION_DAYS) are all "not found". `purge_expired` (manage.py purge_responses)
deletes the expired rows.
"""

from datetime import datetime, timedelta
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from aihub.models_responses import StoredResponse
from city.calls import Call
from city.errors import ApiError
from city.ids import new_id
from city.storable import NUL

# OpenAI's `include` values (IncludeEnum). Each asks for data a response may carry; City keeps the
# response and its input items whole, as answered, so what a request included is there already.
INCLUDABLE = frozenset(
    {
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs",
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    }
)
# Id prefixes of the items City names (as OpenAI's look); any other kind of item gets "item_".
ITEM_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 100
PURGE_BATCH = 1000


# ——— Saving and the conversation, for POST /v1/responses ———


async def save(
    studio_id: str,
    token_id: str | None,
    response: dict[str, Any],
    input_items: list[dict[str, Any]] | str,
    previous_response_id: str | None,
) -> None:
    """Keep a finished response (completed, incomplete or failed) and its own request's input items
    (a string input counts as one user message). The items are kept as OpenAI lists them: each with
    an id and a `type`, a message's text as content parts."""
    now = timezone.now()
    await StoredResponse.objects.acreate(
        id=response["id"],
        studio_id=studio_id,
        token_id=token_id,
        model=str(response.get("model", ""))[:100],
        previous_response_id=previous_response_id or "",
        input_items=storable(stored_items(input_items)),
        response=storable(response),
        created_at=now,
        expires_at=now + timedelta(days=settings.CITY_RESPONSES_RETENTION_DAYS),
    )


async def history(studio_id: str, previous_response_id: str) -> list[dict[str, Any]]:
    """The conversation up to and including that response, as Responses input items in order (each
    earlier request's input items, then its output items). A 400 naming previous_response_id (code
    `previous_response_not_found`, as OpenAI answers) when it, or a response before it in its
    conversation, is not this studio's, was deleted or has expired."""
    rows, missing = await conversation(studio_id, previous_response_id)
    if missing is not None:
        raise previous_not_found(previous_response_id, missing)
    return items_of(rows)


async def conversation(studio_id: str, response_id: str) -> tuple[list[StoredResponse], str | None]:
    """The studio's unexpired stored responses from `response_id` back to the first of its
    conversation, newest first, and the id at which the walk stopped short (None: it reached the
    first): one query, however long the conversation (an agent's tool loop may chain hundreds)."""
    rows = await sync_to_async(chain_rows)(studio_id, response_id)
    now = timezone.now()
    kept: list[StoredResponse] = []
    seen: set[str] = set()
    wanted = response_id
    for row in rows:  # newest first, each the one its predecessor names
        if row.expires_at <= now:
            return kept, row.pk
        if row.pk in seen:
            return kept, None  # a loop of hand-edited rows came round: it holds the whole conversation
        seen.add(row.pk)
        kept.append(row)
        wanted = row.previous_response_id
    return kept, wanted or None


def chain_rows(studio_id: str, response_id: str) -> list[StoredResponse]:
    return list(StoredResponse.objects.raw(CONVERSATION_SQL, [response_id, studio_id, studio_id, MAX_TURNS]))


# Turns a conversation walk follows at most: a guard against a hand-edited loop of rows (each row
# names an older one, so no conversation City made has one).
MAX_TURNS = 10_000
_TABLE = StoredResponse._meta.db_table
# The chain of rows a response id starts, by recursion over previous_response_id within one studio
# (SQLite and PostgreSQL alike), newest first; the walk ends at a row whose predecessor is absent.
CONVERSATION_SQL = f"""
WITH RECURSIVE chain(id, previous_response_id, depth) AS (
    SELECT id, previous_response_id, 0 FROM {_TABLE} WHERE id = %s AND studio_id = %s
    UNION ALL
    SELECT r.id, r.previous_response_id, chain.depth + 1 FROM {_TABLE} r JOIN chain ON r.id = chain.previous_response_id
    WHERE r.studio_id = %s AND chain.depth < %s
)
SELECT r.id, r.previous_response_id, r.input_items, r.response, r.expires_at
FROM {_TABLE} r JOIN chain ON r.id = chain.id ORDER BY chain.depth
"""  # noqa: S608  (the table name is the model's own; values are parameters)


def items_of(newest_first: list[StoredResponse]) -> list[dict[str, Any]]:
    """The responses' items in conversation order: each one's input items, then its output."""
    items: list[dict[str, Any]] = []
    for row in reversed(newest_first):
        items.extend(row.input_items)
        items.extend(row.response.get("output") or [])
    return items


def previous_not_found(previous_response_id: str, missing: str) -> ApiError:
    if missing == previous_response_id:
        message = f"Previous response with id '{missing[:100]}' not found."
    else:
        message = (
            f"Previous response with id '{previous_response_id[:100]}' continues response '{missing[:100]}', which is not found "
            "(deleted, or older than the retention): its conversation cannot be rebuilt. Send the whole conversation as input instead."
        )
    return ApiError(400, message + retention_note(), param="previous_response_id", code="previous_response_not_found")


def retention_note() -> str:  # read at each call: tests change the setting
    return f" Stored responses are kept {settings.CITY_RESPONSES_RETENTION_DAYS} days, for the studio that made them."


# ——— The routes ———


async def retrieve(call: Call, response_id: str) -> dict[str, Any]:
    """GET /v1/responses/{id}: the response object as it was answered."""
    query = checked(call, {"include", "include[]", "stream", "starting_after", "include_obfuscation"})
    includes(query, call)
    if flag(query, "stream"):
        raise ApiError(
            400,
            "stream=true replays a background response's events; City runs no background responses, so a stored response is "
            "only read whole (leave stream out).",
            param="stream",
            code="unsupported_value",
        )
    flag(query, "include_obfuscation")
    found = await live(call, response_id).values_list("response", flat=True).afirst()
    if found is None:
        raise not_found(response_id)
    return found


async def delete(call: Call, response_id: str) -> dict[str, Any]:
    """DELETE /v1/responses/{id}: OpenAI's deleted object. A response that continued this one can no
    longer be continued (its conversation lacks this part)."""
    checked(call, set())
    deleted, _ = await live(call, response_id).adelete()
    if not deleted:
        raise not_found(response_id)
    return {"id": response_id, "object": "response", "deleted": True}


async def input_items(call: Call, response_id: str) -> dict[str, Any]:
    """GET /v1/responses/{id}/input_items: the items used to make it — for a response that continued
    another (`previous_response_id`), the earlier turns' input and output items first, as OpenAI lists
    them — then its own request's; in OpenAI's list shape, newest first unless order=asc; `after` /
    `before` (item ids) page through them, `limit` 1-100 (20). Earlier responses deleted or expired
    since are left out, with everything before them."""
    query = checked(call, {"after", "before", "limit", "order", "include", "include[]"})
    includes(query, call)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be 'asc' or 'desc'.", param="order", code="invalid_value")
    limit = list_limit(query.get("limit"))
    row = await live(call, response_id).only("input_items", "previous_response_id").afirst()
    if row is None:
        raise not_found(response_id)
    earlier, _ = await conversation(call.studio_id(), row.previous_response_id) if row.previous_response_id else ([], None)
    items = [*items_of(earlier), *row.input_items]
    ordered = items if order == "asc" else items[::-1]
    start, end = 0, len(ordered)
    if "after" in query:
        start = position(ordered, query["after"], "after") + 1
    if "before" in query:
        end = position(ordered, query["before"], "before")
    window = ordered[start:end]
    if "before" in query and "after" not in query:
        # Paging backwards: the `limit` items right before the cursor; more remain before them.
        data, has_more = window[-limit:], len(window) > limit
    else:
        data, has_more = window[:limit], len(window) > limit
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": has_more,
    }


async def cancel(call: Call, response_id: str) -> dict[str, Any]:
    """POST /v1/responses/{id}/cancel: only a background response can be cancelled, and City runs
    none (every response is answered while its request is open): a 400 for a stored one, else 404."""
    checked(call, set())
    if not await live(call, response_id).aexists():
        raise not_found(response_id)
    raise ApiError(
        400,
        f"Response '{response_id}' cannot be cancelled: only background responses can be, and City runs none; every response is "
        "answered while its request is open, so this one has finished. To stop a response, close its request.",
        code="not_cancellable",
    )


# ——— Retention ———


def purge_expired(now: datetime) -> int:
    """Delete the stored responses expired at `now`, in batches (short locks); how many (sync:
    manage.py purge_responses)."""
    deleted = 0
    while ids := list(StoredResponse.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:PURGE_BATCH]):
        deleted += StoredResponse.objects.filter(pk__in=ids).delete()[0]
    return deleted


# ——— Helpers ———


def live(call: Call, response_id: str) -> "QuerySet[StoredResponse]":
    """The caller's studio's unexpired response of that id, as a queryset (empty when there is none)."""
    return StoredResponse.objects.filter(pk=response_id, studio_id=call.studio_id(), expires_at__gt=timezone.now())


def not_found(response_id: str) -> ApiError:
    return ApiError(404, f"Response with id '{response_id[:100]}' not found." + retention_note(), code="not_found")


def checked(call: Call, allowed: set[str]) -> dict[str, Any]:
    """The route's query parameters (a GET's) or body fields; a 400 naming the first it does not take
    (studio_id is the admin's, read by call.studio_id())."""
    for name in call.data:
        if name not in allowed and name != "studio_id":
            takes = ", ".join(sorted(allowed)) or "nothing"
            raise ApiError(400, f"Unknown parameter: '{name[:100]}'. This route takes {takes}.", param=name[:100], code="unknown_parameter")
    return call.data


def includes(query: dict[str, Any], call: Call) -> list[str]:
    """`include` values, as `include[]=…` (what OpenAI's SDKs send) or `include=…`, each repeatable."""
    values = [*call.request.GET.getlist("include"), *call.request.GET.getlist("include[]")]
    for value in values:
        if value not in INCLUDABLE:
            raise ApiError(
                400, f"include: '{value[:100]}' is not one of {', '.join(sorted(INCLUDABLE))}.", param="include", code="invalid_value"
            )
    return values


def flag(query: dict[str, Any], name: str) -> bool:
    value = query.get(name, "false")
    if value not in ("true", "false"):
        raise ApiError(400, f"{name} must be true or false.", param=name, code="invalid_value")
    return value == "true"


def list_limit(given: str | None) -> int:
    if given is None:
        return LIST_LIMIT_DEFAULT
    if not (given.isascii() and given.isdigit() and 1 <= int(given) <= LIST_LIMIT_MAX):
        raise ApiError(400, f"limit must be a whole number from 1 to {LIST_LIMIT_MAX}.", param="limit", code="invalid_value")
    return int(given)


def position(items: list[dict[str, Any]], item_id: str, param: str) -> int:
    for index, item in enumerate(items):
        if item.get("id") == item_id:
            return index
    raise ApiError(400, f"{param}: '{item_id[:100]}' is not an input item of this response.", param=param, code="invalid_value")


def stored_items(given: list[dict[str, Any]] | str) -> list[dict[str, Any]]:
    """A request's input as the items OpenAI lists: a string is one user message; every item gets an
    id, a `type` and a status; a message's string content becomes one text part. Given dicts are
    not changed."""
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    return [stored_item(item) for item in given if isinstance(item, dict)]


def stored_item(given: dict[str, Any]) -> dict[str, Any]:
    item = dict(given)
    kind = item.setdefault("type", "message" if "role" in item else "item")
    if kind == "item_reference":
        return item  # names an item already stored (its own id)
    if not isinstance(item.get("id"), str) or not item["id"]:
        item["id"] = new_id(ITEM_ID_PREFIXES.get(kind, "item"))
    if kind in ("message", "function_call", "function_call_output"):
        item.setdefault("status", "completed")
    if kind == "message":
        assistant = item.get("role") == "assistant"
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "output_text" if assistant else "input_text", "text": content}]
        if isinstance(content, list):
            # An assistant's text as OpenAI answers it (OutputTextContent needs both lists).
            item["content"] = [
                {"annotations": [], "logprobs": [], **part} if isinstance(part, dict) and part.get("type") == "output_text" else part
                for part in content
            ]
    return item


def storable(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb can keep it: it refuses the NUL character, which City refuses in
    requests but an upstream's answer may hold (each becomes U+FFFD, the replacement character)."""
    if b"\\u0000" not in orjson.dumps(value):  # else none is there (the six bytes may still be an escaped backslash's)
        return value
    return without_nul(value)


def without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, "\ufffd")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(child) for key, child in value.items()}
    if isinstance(value, list):
        return [without_nul(child) for child in value]
    return value
