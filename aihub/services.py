"""The ai service: the model catalog, City's text and media APIs and the OpenAI-compatible API."""

from aihub import catalog, image_api, messages_api, openai_request, responses_api, speech_api, transcription_api, video_api
from aihub.catalog_api import list_models
from aihub.logs_api import LogsInput, logs
from aihub.openai_api import chat_completions, completions, embeddings
from aihub.sdk_api import TEXT_REQUEST, stream, text
from aihub.usage_api import UsageInput, usage
from city.registry import USER, Action, Service

JSON, SSE = "application/json", "text/event-stream"  # what a success answers: with `stream: true`, events

SERVICE = Service(
    id="ai",
    name="AI",
    description="Text, streaming, chat completions, completions and embeddings across providers, through City's API and OpenAI's; usage.",
    actions=(
        Action(
            "models",
            list_models,
            methods=("GET",),
            allow=(USER,),
            description="Models callable now (the admin sees every model with its env requirements); /models/{id} for one.",
            subpaths=True,
        ),
        Action(
            "text",
            text,
            allow=(USER,),
            input=TEXT_REQUEST,
            description="One answer: {model, prompt | messages, system?, …} → a message with parts.",
        ),
        Action(
            "stream",
            stream,
            allow=(USER,),
            input=TEXT_REQUEST,
            description="The same as text, answered as server-sent events.",
            responds=(SSE,),
        ),
        Action(
            "chat/completions",
            chat_completions,
            allow=(USER,),
            large_body=True,
            input=openai_request.CHAT_COMPLETIONS,
            description="OpenAI chat completions, streaming included.",
            responds=(JSON, SSE),
        ),
        Action(
            "completions",
            completions,
            allow=(USER,),
            input=openai_request.COMPLETIONS,
            description="OpenAI legacy completions, for every chat model.",
            responds=(JSON, SSE),
        ),
        Action("embeddings", embeddings, allow=(USER,), input=openai_request.EMBEDDINGS, description="OpenAI embeddings, float or base64."),
        Action(
            "usage",
            usage,
            methods=("GET", "POST"),
            allow=(USER,),
            input=UsageInput,
            description="Requests, errors, tokens and cost by day, hour, model, token, studio or account, as JSON or CSV; "
            "a token sees its studio (an account's token, its account), the admin any studio.",
            responds=(JSON, "text/csv"),
        ),
        Action(
            "logs",
            logs,
            methods=("GET", "POST"),
            allow=(USER,),
            input=LogsInput,
            description="The request log: one row per AI call, newest first, filtered by studio, token, model, status, error code, time or request id.",
        ),
        *image_api.ACTIONS,
        *speech_api.ACTIONS,
        *transcription_api.ACTIONS,
        *video_api.ACTIONS,
        *responses_api.ACTIONS,
        *messages_api.ACTIONS,
    ),
    aliases={
        "chat/completions": "chat/completions",
        "completions": "completions",
        "embeddings": "embeddings",
        "models": "models",
        **image_api.ALIASES,
        **speech_api.ALIASES,
        **transcription_api.ALIASES,
        **video_api.ALIASES,
        **responses_api.ALIASES,
        **messages_api.ALIASES,
    },
    env=catalog.provider_keys(),
    env_consumers=catalog.env_consumers,
)
