"""The cast of the tests that need studios and user tokens.

Alice runs a studio, Bob holds one of its tokens, Charlie holds a token of another studio.
"""

from city.testing import ApiTestCase
from studios import operations
from studios.credentials import token_cache
from studios.models import Studio, UserToken

ADMIN_ACTOR = "test-admin"


class CityTestCase(ApiTestCase):
    """City's real routes, with the cast in the database and an empty token cache."""

    alice_studio: Studio
    bob: UserToken
    bob_token: str
    charlie_studio: Studio
    charlie: UserToken
    charlie_token: str

    @classmethod
    def setUpTestData(cls) -> None:
        cls.alice_studio = operations.create_studio("Alice Studio", actor=ADMIN_ACTOR)
        cls.bob, cls.bob_token = operations.issue_token(cls.alice_studio.id, "bob laptop", expires_at=None, actor=ADMIN_ACTOR)
        cls.charlie_studio = operations.create_studio("Charlie Studio", actor=ADMIN_ACTOR)
        cls.charlie, cls.charlie_token = operations.issue_token(cls.charlie_studio.id, "charlie", expires_at=None, actor=ADMIN_ACTOR)

    def setUp(self) -> None:
        token_cache.clear()
