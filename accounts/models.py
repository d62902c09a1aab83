from django.db import models
from django.utils import timezone

from city.ids import new_id


def new_account_id() -> str:
    return new_id("acct")


class Account(models.Model):
    """A person who signs in to one studio, by password or through a linked OAuth identity."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"  # cannot sign in; its tokens were revoked when it was disabled

    id = models.CharField(primary_key=True, max_length=40, default=new_account_id, editable=False)
    studio = models.ForeignKey("studios.Studio", on_delete=models.PROTECT, related_name="accounts")
    email = models.CharField(max_length=254)  # normalised to lower case: one account per email per studio
    display_name = models.CharField(max_length=200, blank=True)
    password = models.CharField(max_length=200)  # Django's hasher format (Argon2); "!…" when unusable
    # True when an admin created the account or a provider vouched for the email; OAuth links only to these.
    email_verified = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["studio", "email"], name="accounts_one_email_per_studio")]
        indexes = [models.Index(fields=["studio", "-id"], name="accounts_by_studio")]

    def __str__(self) -> str:
        return f"{self.email} ({self.id})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class OAuthIdentity(models.Model):
    """A provider's user (GitHub or Google) linked to an account of one studio."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="identities")
    studio = models.ForeignKey("studios.Studio", on_delete=models.PROTECT, related_name="+")  # the account's, for the constraint
    provider = models.CharField(max_length=20)
    provider_user_id = models.CharField(max_length=200)
    email = models.CharField(max_length=254, blank=True)
    email_verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "OAuth identities"
        constraints = [models.UniqueConstraint(fields=["studio", "provider", "provider_user_id"], name="accounts_one_identity_per_studio")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_user_id}"


class StudioAccountSettings(models.Model):
    """A studio's account rules. A studio without a row follows ACCOUNTS_SELF_REGISTRATION_DEFAULT."""

    studio = models.OneToOneField("studios.Studio", on_delete=models.CASCADE, primary_key=True, related_name="account_settings")
    # Whether people may create their own accounts: accounts/register, and a first OAuth sign-in.
    self_registration = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "studio account settings"
        verbose_name_plural = "studio account settings"

    def __str__(self) -> str:
        return f"account settings of {self.studio_id}"


class OAuthFlow(models.Model):
    """One OAuth sign-in, from oauth/start to the pickup of its result, shared by every process.

    Neither the flow id (the client's pickup secret) nor the state is stored: only their SHA-256.
    No token is stored either: it is minted when the result is picked up.
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for the provider's redirect
        EXCHANGING = "exchanging"  # state consumed; talking to the provider
        CONFIRMING = "confirming"  # polling flows: account known; waits for the person's "This is me" on City's page
        COMPLETE = "complete"  # account known; the result waits for its one pickup
        TAKEN = "taken"  # the result was handed out
        DENIED = "denied"  # the user refused consent at the provider
        CANCELLED = "cancelled"  # the person pressed Cancel on City's confirm page
        FAILED = "failed"  # see failure_code and failure_message

    class Purpose(models.TextChoices):
        CLIENT = "client"  # a studio client polls oauth/result for a user token, once the person confirms
        LOOPBACK = "loopback"  # a native app gets a one-time code on its http://127.0.0.1 redirect (RFC 8252)
        DASHBOARD = "dashboard"  # the browser returns to /dashboard/keys, signed in

    id = models.CharField(primary_key=True, max_length=64)  # SHA-256 (hex) of the flow id
    state_digest = models.CharField(max_length=64, unique=True)  # SHA-256 (hex) of the state
    provider = models.CharField(max_length=20)
    studio = models.ForeignKey("studios.Studio", on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.CLIENT)
    code_verifier = models.CharField(max_length=128, blank=True)  # PKCE; only the provider's token endpoint sees it
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    failure_code = models.CharField(max_length=50, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the starting app declared about itself: shown on the confirm page as unverified, never trusted.
    app_name = models.CharField(max_length=60, blank=True)
    # Polling flows: the short code the app shows its user and City's confirm page shows too.
    user_code = models.CharField(max_length=9, blank=True)
    # Polling flows: SHA-256 of the confirm page's two secrets (the form's flow reference, and its
    # CSRF token, also set as a cookie), made when the provider's redirect reached City.
    confirm_digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    csrf_digest = models.CharField(max_length=64, blank=True)
    # Loopback flows: the app's redirect URI, its state (repeated on the redirect) and PKCE challenge.
    redirect_uri = models.CharField(max_length=200, blank=True)
    client_state = models.CharField(max_length=200, blank=True)
    client_code_challenge = models.CharField(max_length=43, blank=True)
    # Loopback and dashboard flows: SHA-256 of the one-time code City hands the browser, and its deadline.
    grant_digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    grant_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="accounts_flow_by_expiry")]
        verbose_name = "OAuth sign-in flow"  # Django would say "o auth flow"

    def __str__(self) -> str:
        return f"{self.provider} sign-in {self.id[:8]}… ({self.status})"
