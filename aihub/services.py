"""The ai service: the model catalog, City's text API and the OpenAI-compatible API."""

from aihub import catalog, inputs
from aihub.catalog_api import list_models
from aihub.openai_api import chat_completions, completions, embeddings
from aihub.sdk_api import stream, text
from city.registry import USER, Action, Service

JSON, SSE = "application/json", "text/event-stream"  # what a success answers: with `stream: true`, events

SERVICE = Service(
    id="ai",
    name="AI",
    description="Text, streaming, chat completions, completions and embeddings across providers, through City's API and OpenAI's.",
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
            input=inputs.TEXT,
            description="One answer: {model, prompt | messages, system?, …} → a message with parts.",
        ),
        Action(
            "stream",
            stream,
            allow=(USER,),
            input=inputs.TEXT,
            description="The same as text, answered as server-sent events.",
            responds=(SSE,),
        ),
        Action(
            "chat/completions",
            chat_completions,
            allow=(USER,),
            input=inputs.CHAT_COMPLETIONS,
            description="OpenAI chat completions, streaming included.",
            responds=(JSON, SSE),
        ),
        Action(
            "completions",
            completions,
            allow=(USER,),
            input=inputs.COMPLETIONS,
            description="OpenAI legacy completions, for every chat model.",
            responds=(JSON, SSE),
        ),
        Action("embeddings", embeddings, allow=(USER,), input=inputs.EMBEDDINGS, description="OpenAI embeddings, float or base64."),
    ),
    aliases={"chat/completions": "chat/completions", "completions": "completions", "embeddings": "embeddings", "models": "models"},
    env_consumers=catalog.env_consumers,
)
