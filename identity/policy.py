"""An organization's sign-in rules (identity.models.SignInPolicy), as its owners set them."""
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import OrgRole, Role
from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind

from .models import IdentityProvider, SignInPolicy


def policy_state(policy: SignInPolicy) -> dict:
    return {"require_sso": policy.require_sso, "session_minutes": policy.session_minutes,
            "break_glass_user": policy.break_glass_user.get_username() if policy.break_glass_user else None}


def policy_of(organization) -> SignInPolicy:
    """The organization's rules, the defaults when it has set none (not saved)."""
    return (SignInPolicy.objects.select_related("break_glass_user").filter(organization=organization).first()
            or SignInPolicy(organization=organization))


@transaction.atomic
def set_sign_in_policy(*, organization, actor: Actor, session_minutes: int, require_sso: bool,
                       break_glass_user=None) -> SignInPolicy:
    """Set the session lifetime and whether the console requires SSO.

    Requiring SSO needs an enabled IdP and a break-glass owner, who alone may still sign in with a
    password and TOTP: without them a broken IdP would lock every owner out for good.
    """
    policy, _ = SignInPolicy.objects.select_for_update().get_or_create(organization=organization)
    before = policy_state(policy)
    if require_sso:
        if not IdentityProvider.objects.filter(organization=organization, enabled=True).exists():
            raise ValidationError({"require_sso": "Set up and enable the organization's identity provider first."})
        if break_glass_user is None:
            raise ValidationError({"break_glass_user": "Choose the owner who may still sign in with a password "
                                                       "if the identity provider fails."})
    if break_glass_user is not None and not OrgRole.objects.filter(
            organization=organization, user=break_glass_user, role=Role.OWNER).exists():
        raise ValidationError({"break_glass_user": "The break-glass user must be an owner."})
    policy.session_minutes, policy.require_sso, policy.break_glass_user = session_minutes, require_sso, break_glass_user
    policy.full_clean(exclude=["organization"])
    after = policy_state(policy)
    if after != before:
        policy.save()
        audit.record(organization=organization, kind=EventKind.CONSOLE_SIGN_IN_CHANGED, actor=actor,
                     payload={"before": before, "after": after})
    return policy
