"""First OAuth sign-ins with one verified email, at the same moment (two devices): one account, every sign-in lands on it."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from django.test import TransactionTestCase

from accounts import operations
from accounts.models import Account, OAuthIdentity
from accounts.oauth.linking import account_for_profile
from accounts.oauth.providers import PROVIDERS, Profile
from studios import operations as studio_operations

SIGN_INS = 10


class ConcurrentFirstSignInTests(TransactionTestCase):
    def test_concurrent_first_sign_ins_with_one_email_share_one_account(self) -> None:
        studio = studio_operations.create_studio("Races", actor="test")
        operations.set_self_registration(studio.id, True, actor="test")
        start = threading.Barrier(SIGN_INS)

        def sign_in(index: int) -> str:
            # GitHub and Google users with the same verified address, signing in for the first time.
            provider = PROVIDERS["github" if index % 2 else "google"]
            profile = Profile(provider_user_id=f"user-{index}", email="Same@Example.com", email_verified=True, display_name="Same")
            try:
                start.wait(timeout=30)
                return account_for_profile(studio.id, provider, profile).id
            finally:
                connection.close()  # each thread's own connection

        with ThreadPoolExecutor(SIGN_INS) as pool:
            accounts = list(pool.map(sign_in, range(SIGN_INS)))
        self.assertEqual(Account.objects.filter(studio=studio).count(), 1)
        self.assertEqual(set(accounts), {Account.objects.get(studio=studio).id})
        self.assertEqual(OAuthIdentity.objects.filter(studio=studio).count(), SIGN_INS)
