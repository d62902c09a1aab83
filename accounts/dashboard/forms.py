"""The dashboard's forms: each field bounded and free of NUL characters before it reaches the database."""

from django import forms

from accounts.oauth.providers import PROVIDERS

KEY_NAME_MAX_CHARS = 100


class SignInForm(forms.Form):
    studio_id = forms.CharField(label="Studio", max_length=40)
    # Any text: a malformed address is just another wrong email, answered the same way.
    email = forms.CharField(label="Email", max_length=254)
    password = forms.CharField(label="Password", max_length=1024, strip=False)  # bounds hashing work


class OAuthStartForm(forms.Form):
    studio_id = forms.CharField(label="Studio", max_length=40)
    provider = forms.ChoiceField(label="Provider", choices=[(key, provider.name) for key, provider in PROVIDERS.items()])


class KeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=KEY_NAME_MAX_CHARS)


class RevokeForm(forms.Form):
    token_id = forms.CharField(label="Key", max_length=40)


def problem(form: forms.Form, when_missing_or_long: str) -> str:
    """The first problem of an invalid form, in words: `when_missing_or_long` for an empty or
    over-long field (the page says what it expects), else the field's label and Django's message."""
    for name, errors in form.errors.as_data().items():
        error = errors[0]
        if error.code in {"required", "max_length", "invalid_choice"}:
            return when_missing_or_long
        return f"{form.fields[name].label}: {error.messages[0]}"
    return when_missing_or_long


def shown(value: str | None, max_chars: int = 254) -> str:
    """A submitted value echoed back into the form, without what made it invalid."""
    return (value or "").replace("\x00", "")[:max_chars].strip()
