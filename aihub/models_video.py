"""Video jobs: one row per video a studio asked for, so that any City process can poll it, across restarts.

The row names its upstream by model, deployment index and the deployment's base-URL env key, never
by URL or key: a process re-resolves it from the runtime env each time it asks the upstream. The
prompt is kept with the job (OpenAI's video object shows it) for as long as the row lives.
Claims (`checked_at`, `fetching_at`, `refunded`) are taken with conditional UPDATEs, so polls from
many processes ask the upstream at most once per CHECK_INTERVAL, download the video once and refund
a failed job once (aihub/video_jobs.py).
"""

from django.db import models
from django.utils import timezone

QUEUED, IN_PROGRESS, COMPLETED, FAILED = "queued", "in_progress", "completed", "failed"
RUNNING = (QUEUED, IN_PROGRESS)


class VideoJob(models.Model):
    id = models.CharField(primary_key=True, max_length=40)  # "video_…" (City's; the upstream's is upstream_id)
    studio = models.ForeignKey("studios.Studio", on_delete=models.CASCADE, related_name="video_jobs")
    token_id = models.CharField(max_length=40, null=True, blank=True)
    account_id = models.CharField(max_length=40, null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    route = models.CharField(max_length=60, blank=True)  # the action that created it: "video" or "videos"
    model = models.CharField(max_length=100)  # City's model id
    provider = models.CharField(max_length=50)
    deployment_index = models.IntegerField(default=0)  # into the model's deployments
    upstream_model = models.CharField(max_length=200)
    base_url_env = models.CharField(max_length=100, blank=True)
    upstream_id = models.CharField(max_length=300)  # OpenAI's video id, or Veo's operation name
    status = models.CharField(max_length=20, default=QUEUED)
    progress = models.IntegerField(default=0)
    prompt = models.TextField(blank=True)
    seconds = models.IntegerField()
    size = models.CharField(max_length=20)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    call_id = models.CharField(max_length=40)  # the usage record that billed it
    cost = models.BigIntegerField(default=0)  # 1e-12 USD, as billed
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # the content's, set once it is stored
    checked_at = models.DateTimeField(null=True, blank=True)  # the last time a poll claimed asking the upstream
    fetching_at = models.DateTimeField(null=True, blank=True)  # a poll claimed the download then
    content_name = models.CharField(max_length=300, blank=True)  # in default_storage
    content_type = models.CharField(max_length=100, blank=True)
    content_bytes = models.BigIntegerField(default=0)
    purged = models.BooleanField(default=False)  # the content expired and was deleted
    deleted = models.BooleanField(default=False)  # DELETE /videos/{id}: gone for the studio
    refunded = models.BooleanField(default=False)  # a failed job's refund was claimed (and written)
    refund_settled = models.BooleanField(default=False)  # … and the ledger's month spend lowered

    class Meta:
        indexes = [
            models.Index(fields=["studio", "created_at", "id"], name="aihub_video_by_studio"),
            models.Index(fields=["expires_at"], name="aihub_video_by_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.model} {self.status}"
