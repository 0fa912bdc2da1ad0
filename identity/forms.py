from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from . import throttle


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing for a while after repeated failures (see `identity.throttle`)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-in attempts for this login from your address. "
                     "Wait %(minutes)d minutes, then try again.",
    }

    def clean(self):
        username = self.data.get("username", "")
        address = throttle.client_address(self.request)
        if username and throttle.is_locked(username, address):
            raise ValidationError(self.error_messages["throttled"], code="throttled",
                                  params={"minutes": throttle.LOCKOUT_SECONDS // 60})
        try:
            cleaned = super().clean()
        except ValidationError:
            if username:
                throttle.record_failure(username, address)
            raise
        throttle.clear(username, address)
        return cleaned
