from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver

from audit import services as audit
from audit.actors import user_actor
from audit.models import EventKind

from .models import OrgRole


@receiver(user_logged_in)
def record_console_login(sender, request, user, **kwargs):
    with transaction.atomic():
        for org_role in OrgRole.objects.filter(user=user).select_related("organization"):
            audit.record(organization=org_role.organization, kind=EventKind.CONSOLE_LOGIN,
                         actor=user_actor(user), payload={"role": org_role.role})
