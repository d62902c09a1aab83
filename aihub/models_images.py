"""Images kept for a client that left before its synchronous image call was answered: the upstream
made them and City billed them, so they wait (CITY_MEDIA_RETENTION_HOURS) for pickup by request id."""

from django.db import models


class KeptImages(models.Model):
    request_id = models.CharField(max_length=200)  # the call's X-Request-Id
    studio_id = models.CharField(max_length=40)  # only this studio picks them up
    call_id = models.CharField(max_length=40, unique=True)  # the usage record's
    model = models.CharField(max_length=100)
    answer_id = models.CharField(max_length=40)  # the `img_…` id the answer would have had
    # One entry per image: {"path": a default_storage name, "mime", "revised_prompt"?} or {"url", "mime", …}
    files = models.JSONField(default=list)
    usage = models.JSONField(default=dict)  # City's usage shape: {images, input_tokens?, output_tokens?}
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["studio_id", "request_id"], name="aihub_kept_images_by_request")]

    def __str__(self) -> str:
        return f"{self.request_id} ({self.model}, {len(self.files)} images)"
