from django.db import models
from django.utils import timezone

# Money is integers. Prices are micro-USD per million tokens, so
# cost = prompt_tokens * input_price + completion_tokens * output_price is exact, in units of 1e-12 USD.
COST_UNITS_PER_USD = 10**12

# A usage record of a call that did not succeed (any status but 2xx: 4xx, 5xx, 499, 0 for
# "interrupted"). Queries for failures repeat this condition word for word, so that SQLite, which
# matches a partial index's condition only by its terms, uses the failure indexes too.
FAILED = models.Q(status__lt=200) | models.Q(status__gte=300)


class UsageRecord(models.Model):
    """One upstream call (or failed attempt at one) made on behalf of a studio."""

    created_at = models.DateTimeField(default=timezone.now)
    studio = models.ForeignKey("studios.Studio", on_delete=models.PROTECT, related_name="usage")
    token_id = models.CharField(max_length=40, null=True, blank=True)
    account_id = models.CharField(max_length=40, null=True, blank=True)
    request_id = models.CharField(max_length=64)
    model = models.CharField(max_length=100)  # City's model id
    provider = models.CharField(max_length=50, blank=True)  # the deployment that answered (or failed last)
    modality = models.CharField(max_length=30)  # "text", "stream", "chat", "completions", "embeddings", …
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    usage_estimated = models.BooleanField(default=False)  # True when the upstream reported no usage
    cost = models.BigIntegerField(default=0)  # 1e-12 USD
    latency_ms = models.IntegerField(default=0)
    ttft_ms = models.IntegerField(null=True, blank=True)  # time to first token, streams only
    status = models.IntegerField(default=200)  # the HTTP status City answered (499: client went away)
    error_code = models.CharField(max_length=100, blank=True)
    # City's id of the call (aihub/ledger.py): the writer and the ledger's reaper may both insert a
    # record; the second insert of a call_id does nothing. Null for records older than the ledger.
    call_id = models.CharField(max_length=40, unique=True, null=True, blank=True)
    route = models.CharField(max_length=60, blank=True)  # the action the client called: "chat/completions", "text", …
    deployment = models.CharField(max_length=200, blank=True)  # the upstream model name the provider was asked for
    streamed = models.BooleanField(default=False)
    cancelled = models.BooleanField(default=False)  # the client went away before the answer was complete
    cached_tokens = models.IntegerField(default=0)  # of prompt_tokens, read from the provider's cache
    reasoning_tokens = models.IntegerField(default=0)  # of completion_tokens, spent thinking
    # Of prompt_tokens, written to the provider's cache (Anthropic's cache_creation_input_tokens),
    # billed at the model's cache-write price.
    cache_write_tokens = models.IntegerField(default=0)
    # Media calls: what they were billed in besides tokens ("images", "characters", "seconds"; the
    # catalog's Model.unit) and how many. A refund (a video job that failed) is a record of negative units and cost.
    unit = models.CharField(max_length=20, blank=True)
    units = models.BigIntegerField(default=0)

    class Meta:
        # The request log (aihub/logs_api.py, the admin) reads newest first by (created_at, id): each
        # of its filters has an index ending in those two columns, so a page is one index range.
        indexes = [
            models.Index(fields=["created_at", "id"], name="aihub_usage_by_time"),
            models.Index(fields=["studio", "created_at", "id"], name="aihub_log_by_studio"),
            models.Index(fields=["token_id", "created_at", "id"], name="aihub_log_by_token"),
            models.Index(fields=["account_id", "created_at", "id"], name="aihub_log_by_account"),
            models.Index(fields=["model", "created_at", "id"], name="aihub_log_by_model"),
            models.Index(fields=["studio", "model", "created_at", "id"], name="aihub_log_by_studio_model"),
            # "Which call was this?": with the studio, which every user token's query names.
            models.Index(fields=["request_id", "studio", "created_at", "id"], name="aihub_log_by_request"),
            # Failures are a few rows in a hundred: partial indexes keep every status and error-code
            # filter an index range without indexing the successes again.
            models.Index(fields=["created_at", "id"], condition=FAILED, name="aihub_log_failed"),
            models.Index(fields=["studio", "created_at", "id"], condition=FAILED, name="aihub_log_failed_by_studio"),
            models.Index(fields=["model", "created_at", "id"], condition=FAILED, name="aihub_log_failed_by_model"),
            models.Index(fields=["error_code", "created_at", "id"], condition=FAILED, name="aihub_log_failed_by_code"),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.status} {self.prompt_tokens}+{self.completion_tokens}"


class RollupSums(models.Model):
    """What both rollups keep of the usage records of one period × studio × token × account × model,
    summed as they are written (aihub/rollups.py), so that dashboards and `ai/usage` read thousands of
    rows, not millions.

    Plain ids rather than foreign keys: a rollup is history, kept as it was. '' where a call had no
    token or account (the admin's calls), so that the unique key holds (NULLs are all distinct).
    """

    studio_id = models.CharField(max_length=40)
    token_id = models.CharField(max_length=40, blank=True)
    account_id = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=100)
    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)  # answered with an error, not counting cancellations
    cancelled = models.BigIntegerField(default=0)  # the client went away (status 499)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    units = models.BigIntegerField(default=0)  # media units (images, characters, seconds): one model has one unit
    cost = models.BigIntegerField(default=0)  # 1e-12 USD
    latency_ms = models.BigIntegerField(default=0)  # summed: the mean is latency_ms / requests
    last_at = models.DateTimeField()  # the newest record's created_at

    class Meta:
        abstract = True


class UsageRollup(RollupSums):
    """The rollups of one UTC hour."""

    hour = models.DateTimeField()  # the start of the hour, UTC

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "studio_id", "token_id", "account_id", "model"], name="aihub_rollup_key"),
        ]
        indexes = [
            models.Index(fields=["studio_id", "hour"], name="aihub_rollup_by_studio"),
            models.Index(fields=["token_id", "hour"], name="aihub_rollup_by_token"),
            models.Index(fields=["account_id", "hour"], name="aihub_rollup_by_account"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.studio_id} {self.model}: {self.requests}"


class UsageDailyRollup(RollupSums):
    """The rollups of one UTC day, kept the same way and in the same transaction: an hour holds about
    as many rows as it had calls once a studio has hundreds of tokens, so views over weeks read days,
    and hours only at a range's ragged ends (aihub/usage_query.py)."""

    day = models.DateField()  # UTC

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "studio_id", "token_id", "account_id", "model"], name="aihub_daily_rollup_key"),
        ]
        indexes = [
            models.Index(fields=["studio_id", "day"], name="aihub_daily_by_studio"),
            models.Index(fields=["token_id", "day"], name="aihub_daily_by_token"),
            models.Index(fields=["account_id", "day"], name="aihub_daily_by_account"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.studio_id} {self.model}: {self.requests}"


from aihub.models_images import KeptImages  # noqa: E402, F401  (its own module: kept image results)
from aihub.models_responses import StoredResponse  # noqa: E402, F401  (stored responses of the Responses API)
from aihub.models_video import VideoJob  # noqa: E402, F401  (video jobs: their own module)
