"""What a handler receives: the request, who sent it, and its validated input."""

from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from city.errors import ApiError
from city.identity import Identity
from city.registry import Action


@dataclass
class Call:
    request: HttpRequest
    identity: Identity
    action: Action
    data: dict[str, Any]  # the action's input (a POST's JSON object, a GET's query parameters), validated by its declaration
    subpath: str = ""  # what follows the action's name in the route, for actions with subpaths
    request_id: str = ""  # the answer's X-Request-Id, also kept on the call's usage record
    # A multipart upload's files by field name (`image[]` as `image`), for actions that take uploads.
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def studio_id(self) -> str:
        """The studio this call acts on: the token's own, or the `studio_id` an admin names.

        A user token's body may repeat its studio id; any other studio id is refused (403).
        """
        given = self.data.get("studio_id")
        if given is not None and not isinstance(given, str):
            raise ApiError(400, "studio_id must be a string such as 'studio_…'.", param="studio_id", code="invalid_type")
        if self.identity.is_admin:
            if not given:
                raise ApiError(
                    400, "Name the studio: studio_id is required with the admin credential.", param="studio_id", code="missing_field"
                )
            return given
        if self.identity.studio_id is None:
            raise ApiError(401, "This action needs a studio token.", code="missing_credential")
        if given and given != self.identity.studio_id:
            raise ApiError(403, "studio_id does not match the studio of this token.", param="studio_id", code="studio_mismatch")
        return self.identity.studio_id
