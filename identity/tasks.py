from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from config.tasks import RETRY

from .models import SeenAssertion

# Past its expiry (and the clock skew the protocols allow, a few minutes at most) an answer is refused
# for being expired, so remembering its nonce or assertion id proves nothing more.
KEPT_PAST_EXPIRY = timedelta(minutes=10)


@shared_task(**RETRY)
def forget_used_assertions() -> int:
    """Delete the one-time values of sign-in answers that have expired; idempotent."""
    deleted, _ = SeenAssertion.objects.filter(expires_at__lt=timezone.now() - KEPT_PAST_EXPIRY).delete()
    return deleted
