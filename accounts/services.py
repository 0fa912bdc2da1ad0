"""Writes of the accounts app. Each service is one transaction that also records the change."""
import secrets
from collections import Counter
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit import services as audit
from audit.actors import Actor
from audit.models import EventKind

from .models import (MAX_EMAIL_DOMAINS, TOMBSTONE_MARK, Account, AccountGroup, ApiToken, Group, OrgRole,
                     Organization, PastMembership, Role, email_domain, tombstone_name)

ACCOUNT_FIELDS = ("user_name", "external_id", "display_name", "email", "active")
GROUP_FIELDS = ("display_name", "external_id")


def bump_policy_version(organization: Organization, *, structure: bool = True) -> int:
    """Count one more change to what decisions depend on; returns the new version.

    The update takes the organization's row lock until the transaction ends, so changes get
    their versions in commit order. `structure=False`: the change is consent events or group
    memberships and nothing else, and its rows carry the version returned (compiled policies
    catch up on those rows instead of compiling again).
    """
    changes = {"policy_version": F("policy_version") + 1}
    if structure:
        changes["structure_version"] = F("structure_version") + 1
    Organization.objects.filter(pk=organization.pk).update(**changes)
    organization.policy_version, organization.structure_version = (
        Organization.objects.values_list("policy_version", "structure_version").get(pk=organization.pk))
    return organization.policy_version


def end_memberships(organization: Organization, memberships, *, now, policy_version: int) -> None:
    """Remove these AccountGroup rows, keeping each as a PastMembership (in the caller's transaction,
    whose policy version the rows carry)."""
    rows = list(memberships.values_list("pk", "account_id", "group_id", "added_at"))
    PastMembership.objects.bulk_create([
        PastMembership(organization=organization, account_id=account_id, group_id=group_id, started_at=added_at,
                       ended_at=now, policy_version=policy_version)
        for _, account_id, group_id, added_at in rows], batch_size=1000)
    AccountGroup.objects.filter(pk__in=[pk for pk, _, _, _ in rows]).delete()


@transaction.atomic
def create_organization(*, slug: str, name: str, actor: Actor) -> Organization:
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"An organization '{slug}' exists already."})
    organization = Organization.objects.create(slug=slug, name=name)
    audit.record(organization=organization, kind=EventKind.ORGANIZATION_CREATED, actor=actor,
                 payload={"slug": slug, "name": name})
    return organization


def checked_email_domains(domains) -> list[str]:
    """The domains as kept (see `email_domain`), each once, in the order given; a ValidationError naming
    `email_domains` otherwise."""
    if not isinstance(domains, (list, tuple)) or not all(isinstance(domain, str) for domain in domains):
        raise ValidationError({"email_domains": "Give a list of domain names."})
    kept, errors = [], []
    for domain in domains:
        try:
            kept.append(email_domain(domain))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError({"email_domains": errors})
    kept = list(dict.fromkeys(kept))
    if len(kept) > MAX_EMAIL_DOMAINS:
        raise ValidationError({"email_domains": f"At most {MAX_EMAIL_DOMAINS} domains."})
    return kept


@transaction.atomic
def set_email_domains(*, organization: Organization, actor: Actor, domains) -> Organization:
    """Set the e-mail domains the organization's reports may be sent to (exactly these, not their
    subdomains). Owners only: the caller checks the role; the change is audited with both lists."""
    kept = checked_email_domains(domains)
    before = Organization.objects.select_for_update().values_list("email_domains", flat=True).get(pk=organization.pk)
    organization.email_domains = kept  # the caller's instance too, as bump_policy_version does
    if kept != before:
        Organization.objects.filter(pk=organization.pk).update(email_domains=kept)
        audit.record(organization=organization, kind=EventKind.ORGANIZATION_CHANGED, actor=actor,
                     payload={"before": {"email_domains": before}, "after": {"email_domains": kept}})
    return organization


@transaction.atomic
def rename_organization(*, organization: Organization, actor: Actor, name: str) -> Organization:
    """Change the name the console and reports show (the slug, which API clients know, stays)."""
    name = name.strip()
    if not name or len(name) > Organization._meta.get_field("name").max_length:
        raise ValidationError({"name": "Give a name of 1 to 200 characters."})
    before = Organization.objects.select_for_update().values_list("name", flat=True).get(pk=organization.pk)
    organization.name = name
    if name != before:
        Organization.objects.filter(pk=organization.pk).update(name=name)
        audit.record(organization=organization, kind=EventKind.ORGANIZATION_CHANGED, actor=actor,
                     payload={"before": {"name": before}, "after": {"name": name}})
    return organization


def group_state(group: Group) -> dict:
    return {"id": group.pk, "display_name": group.display_name, "external_id": group.external_id}


def account_state(account: Account, group_ids=None) -> dict:
    state = {name: getattr(account, name) for name in ACCOUNT_FIELDS}
    state["id"] = account.pk
    state["groups"] = sorted(group_ids if group_ids is not None else
                             account.groups.values_list("pk", flat=True))
    return state


def _check_unique(model, organization, values: dict, exclude_pk=None, any_case=()):
    """Refuse values another row of the organization holds, in one query; names the first field taken
    (in the order of `values`), whichever rows hold them.

    Fields in `any_case` are compared without regard to case (SCIM's userName).
    """
    values = {name: value for name, value in values.items() if value not in (None, "")}
    if not values:
        return
    clash = Q(pk__in=[])
    for name, value in values.items():
        clash |= Q(**{f"{name}__iexact" if name in any_case else name: value})
    taken = list(model.objects.filter(organization=organization).filter(clash).exclude(pk=exclude_pk)
                 .values_list(*values))
    if not taken:
        return

    def held(name, index):
        if name in any_case:
            return any(row[index].lower() == values[name].lower() for row in taken)
        return any(row[index] == values[name] for row in taken)
    name = next((name for index, name in enumerate(values) if held(name, index)), next(iter(values)))
    raise ValidationError({name: ValidationError(f"'{values[name]}' is taken in this organization.", code="unique")})


def _check_groups(organization, groups):
    foreign = [group.pk for group in groups if group.organization_id != organization.pk]
    if foreign:
        raise ValidationError({"groups": "Not found in this organization."})


@transaction.atomic
def create_group(*, organization: Organization, actor: Actor, display_name: str,
                 external_id: str | None = None) -> Group:
    external_id = external_id or None  # "" is no id: it must not collide with another ""
    _check_unique(Group, organization, {"display_name": display_name, "external_id": external_id})
    group = Group.objects.create(organization=organization, display_name=display_name, external_id=external_id)
    audit.record(organization=organization, kind=EventKind.GROUP_CREATED, actor=actor,
                 payload={"after": group_state(group)})
    return group


@transaction.atomic
def update_group(*, group: Group, actor: Actor, **changes) -> Group:
    group = Group.objects.select_for_update().get(pk=group.pk)
    before = group_state(group)
    for name, value in changes.items():
        if name not in GROUP_FIELDS:
            raise ValidationError({name: "Cannot be changed."})
        setattr(group, name, value or None if name == "external_id" else value)
    _check_unique(Group, group.organization_id, {name: getattr(group, name) for name in changes},
                  exclude_pk=group.pk)
    after = group_state(group)
    if after != before:
        group.save()
        audit.record(organization=group.organization, kind=EventKind.GROUP_CHANGED, actor=actor,
                     payload={"before": before, "after": after})
    return group


@transaction.atomic
def create_account(*, organization: Organization, actor: Actor, user_name: str, email: str = "",
                   display_name: str = "", external_id: str | None = None, active: bool = True,
                   groups=(), user_name_any_case: bool = False) -> Account:
    """Provision one account. `user_name_any_case`: a user name differing only in case is taken too (SCIM)."""
    external_id = external_id or None  # "" is no id: it must not collide with another ""
    _check_unique(Account, organization, {"user_name": user_name, "external_id": external_id},
                  any_case=("user_name",) if user_name_any_case else ())
    groups = list(groups)
    _check_groups(organization, groups)
    account = Account.objects.create(organization=organization, user_name=user_name, email=email,
                                     display_name=display_name, external_id=external_id, active=active)
    if groups:
        version = bump_policy_version(organization, structure=False)
        AccountGroup.objects.bulk_create([AccountGroup(account=account, group=group, added_at=account.created_at,
                                                       policy_version=version) for group in groups])
    audit.record(organization=organization, kind=EventKind.ACCOUNT_PROVISIONED, actor=actor,
                 subject_account=account, payload={"after": account_state(account, [g.pk for g in groups])})
    return account


@transaction.atomic
def create_accounts(*, organization: Organization, actor: Actor, accounts: list[dict]) -> list[Account]:
    """Provision many accounts at once (bulk inserts), each audited like a single one.

    Each item holds the fields of `create_account`, with `groups` a list of Group objects.
    """
    user_names = [item["user_name"] for item in accounts]
    taken = set(Account.objects.filter(organization=organization, user_name__in=user_names)
                .values_list("user_name", flat=True))
    duplicates = sorted(taken | {name for name, n in Counter(user_names).items() if n > 1})
    if duplicates:
        raise ValidationError({"user_name": f"Taken or repeated: {', '.join(duplicates[:10])}."})
    _check_groups(organization, [group for item in accounts for group in item.get("groups", ())])
    rows = [Account(organization=organization, **{k: v for k, v in item.items() if k != "groups"})
            for item in accounts]
    for row in rows:
        row.external_id = row.external_id or None
    created = Account.objects.bulk_create(rows, batch_size=1000)
    if not all(account.pk for account in created):  # backends without RETURNING
        by_name = dict(Account.objects.filter(organization=organization, user_name__in=user_names)
                       .values_list("user_name", "pk"))
        for account in created:
            account.pk = by_name[account.user_name]
    now = timezone.now()
    links = [AccountGroup(account=account, group=group, added_at=now)
             for account, item in zip(created, accounts) for group in item.get("groups", ())]
    if links:
        version = bump_policy_version(organization, structure=False)
        for link in links:
            link.policy_version = version
        AccountGroup.objects.bulk_create(links, batch_size=1000)
    audit.record_many(organization=organization, kind=EventKind.ACCOUNT_PROVISIONED, actor=actor, entries=[
        (account, {"after": account_state(account, [g.pk for g in item.get("groups", ())])})
        for account, item in zip(created, accounts)])
    return created


@transaction.atomic
def update_account(*, account: Account, actor: Actor, groups=None, user_name_any_case: bool = False,
                   **changes) -> Account:
    """Change an account's attributes and, when `groups` is given, replace its group memberships.

    `user_name_any_case`: a user name differing only in case from another account's is taken (SCIM).
    """
    account = Account.objects.select_for_update().get(pk=account.pk)
    organization = account.organization
    before = account_state(account)
    for name, value in changes.items():
        if name not in ACCOUNT_FIELDS:
            raise ValidationError({name: "Cannot be changed."})
        setattr(account, name, value or None if name == "external_id" else value)
    _check_unique(Account, organization, {name: getattr(account, name) for name in ("user_name", "external_id")
                                          if name in changes},
                  exclude_pk=account.pk, any_case=("user_name",) if user_name_any_case else ())
    group_ids = before["groups"]
    if groups is not None:
        groups = list(groups)
        _check_groups(organization, groups)
        group_ids = sorted(group.pk for group in groups)
    after = account_state(account, group_ids)
    if after == before:
        return account
    renamed = after["user_name"] != before["user_name"]
    if renamed or group_ids != before["groups"]:  # compiled policies resolve user names too
        version = bump_policy_version(organization, structure=renamed)
    if group_ids != before["groups"]:
        now = timezone.now()
        end_memberships(organization, AccountGroup.objects.filter(account=account).exclude(group_id__in=group_ids),
                        now=now, policy_version=version)
        AccountGroup.objects.bulk_create([AccountGroup(account=account, group_id=pk, added_at=now,
                                                       policy_version=version)
                                          for pk in group_ids if pk not in before["groups"]])
    account.save()
    kind = (EventKind.ACCOUNT_DEACTIVATED if before["active"] and not after["active"]
            else EventKind.ACCOUNT_CHANGED)
    audit.record(organization=organization, kind=kind, actor=actor, subject_account=account,
                 payload={"before": before, "after": after})
    return account


class MembershipChange(NamedTuple):
    """What `change_group_members` did: the ids added and removed, and the group and its members after it."""

    added: list[int]
    removed: list[int]
    group: Group
    members: frozenset[int]


@transaction.atomic
def change_group_members(*, group: Group, actor: Actor, add=(), remove=()) -> MembershipChange:
    """Add and remove members of one group (account ids).

    Each account whose groups change gets its own `account.changed` event (its groups before and
    after), as `update_account` records, so a person's history shows who changed their groups.
    The group and its members are read under the group's lock, so the result holds them as this
    change left them (the caller need not read them again).
    """
    locked = Group.objects.select_for_update(of=("self",)).select_related("organization").get(pk=group.pk)
    organization = locked.organization
    add, remove = set(add), set(remove) - set(add)
    wanted = add | remove
    accounts = {account.pk: account for account in Account.objects.filter(organization=organization, pk__in=wanted)}
    if missing := sorted(wanted - accounts.keys()):
        raise ValidationError({"members": f"Not found in this organization: {missing[:10]}."})
    current = set(AccountGroup.objects.filter(group=locked).values_list("account_id", flat=True))
    added, removed = sorted(add - current), sorted(remove & current)
    if not added and not removed:
        return MembershipChange([], [], locked, frozenset(current))
    groups: dict[int, list[int]] = {pk: [] for pk in added + removed}
    for account_id, group_id in AccountGroup.objects.filter(account_id__in=groups).values_list("account_id",
                                                                                              "group_id"):
        groups[account_id].append(group_id)
    now = timezone.now()
    version = bump_policy_version(organization, structure=False)
    end_memberships(organization, AccountGroup.objects.filter(group=locked, account_id__in=removed), now=now,
                    policy_version=version)
    AccountGroup.objects.bulk_create([AccountGroup(account_id=pk, group=locked, added_at=now, policy_version=version)
                                      for pk in added], batch_size=1000)
    # The group's lastModified moves; the accounts' rows are not touched (their meta.version still
    # changes, since it covers their groups). Updating many accounts' rows from concurrent group
    # changes would lock them in differing orders: deadlocks under an IdP's parallel pushes.
    Group.objects.filter(pk=locked.pk).update(updated_at=now)
    locked.updated_at = now
    audit.record_many(organization=organization, kind=EventKind.ACCOUNT_CHANGED, actor=actor, occurred_at=now,
                      entries=[_membership_entry(accounts[pk], group_ids, locked, joined=pk not in removed,
                                                 version=version) for pk, group_ids in groups.items()])
    return MembershipChange(added, removed, locked, frozenset(current - set(removed) | set(added)))


def _membership_entry(account: Account, group_ids, group: Group, *, joined: bool, version: int) -> tuple:
    """The `account.changed` outbox entry of one account joining or leaving one group."""
    state = account_state(account, group_ids)
    after = dict(state, groups=sorted(set(group_ids) | {group.pk} if joined else set(group_ids) - {group.pk}))
    return Account(pk=account.pk), {"before": state, "after": after, "group": group_state(group),
                                    "policy_version": version}


@transaction.atomic
def delete_account(*, account: Account, actor: Actor) -> Account:
    """Delete an account (SCIM's DELETE of a user): deactivate it, leave its groups, and retire its name
    and external id.

    Nothing is erased: the row, its consents and its audit trail stay, under a renamed user_name
    (`<name>#deleted-<id>`), so the IdP may provision the same userName again as a new account.
    """
    account = Account.objects.select_for_update(of=("self",)).select_related("organization").get(pk=account.pk)
    if TOMBSTONE_MARK in account.user_name:
        return account
    organization = account.organization
    # Its groups are left in one pass (their rows locked in id order, as concurrent changes take
    # them), each with the `account.changed` event a removal by change_group_members records.
    groups = list(Group.objects.select_for_update(of=("self",)).filter(accounts=account).order_by("pk"))
    # The user name is free and the groups are left: compiled policies must forget both.
    version = bump_policy_version(organization)
    if groups:
        now = timezone.now()
        end_memberships(organization, AccountGroup.objects.filter(account=account), now=now, policy_version=version)
        Group.objects.filter(pk__in=[group.pk for group in groups]).update(updated_at=now)
        entries, left = [], [group.pk for group in groups]
        for group in groups:
            entries.append(_membership_entry(account, left, group, joined=False, version=version))
            left.remove(group.pk)
        audit.record_many(organization=organization, kind=EventKind.ACCOUNT_CHANGED, actor=actor, entries=entries,
                          occurred_at=now)
    before = account_state(account, [])
    account.active = False
    account.user_name = tombstone_name(account.user_name, account.pk, Account._meta.get_field("user_name").max_length)
    account.external_id = None
    account.save(update_fields=["active", "user_name", "external_id", "updated_at"])
    audit.record(organization=organization, kind=EventKind.ACCOUNT_DEACTIVATED, actor=actor,
                 subject_account=account,
                 payload={"action": "deleted", "before": before, "after": account_state(account, [])})
    return account


@transaction.atomic
def delete_group(*, group: Group, actor: Actor) -> Group:
    """Delete a group (SCIM's DELETE): its members leave it and it is marked deleted (renamed), never erased.

    Its rules stay in the policy history; with no members left they decide nothing.
    """
    group = Group.objects.select_for_update().get(pk=group.pk)
    if TOMBSTONE_MARK in group.display_name:
        return group
    members = list(AccountGroup.objects.filter(group=group).values_list("account_id", flat=True))
    if members:
        change_group_members(group=group, actor=actor, remove=members)
    before = group_state(group)
    group.display_name = tombstone_name(group.display_name, group.pk,
                                        Group._meta.get_field("display_name").max_length)
    group.external_id = None
    group.save(update_fields=["display_name", "external_id", "updated_at"])
    audit.record(organization=group.organization, kind=EventKind.GROUP_DELETED, actor=actor,
                 payload={"before": before, "after": group_state(group), "members_removed": sorted(members)})
    return group


@transaction.atomic
def add_org_role(*, organization: Organization, user, role: str, actor: Actor) -> OrgRole:
    org_role, _ = OrgRole.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
    audit.record(organization=organization, kind=EventKind.MEMBERSHIP_CHANGED, actor=actor,
                 payload={"user": user.get_username(), "role": role})
    return org_role


def _locked_org_roles(organization: Organization) -> dict:
    """The organization's console roles by user id, row-locked until the transaction ends: two
    concurrent demotions of its last two owners then run one after the other, and the second sees
    the first's result."""
    return {org_role.user_id: org_role
            for org_role in OrgRole.objects.select_for_update().filter(organization=organization).order_by("pk")}


def _role_of(roles: dict, user) -> OrgRole:
    if user.pk not in roles:
        raise ValidationError({"user": f"{user.get_username()} has no role in this organization."})
    return roles[user.pk]


def _keep_an_owner(roles: dict, user, field: str) -> None:
    if not any(org_role.role == Role.OWNER for user_id, org_role in roles.items() if user_id != user.pk):
        raise ValidationError({field: f"{user.get_username()} is the organization's last owner: make someone "
                                      f"else an owner first."})


@transaction.atomic
def change_org_role(*, organization: Organization, user, role: str, actor: Actor) -> OrgRole:
    """Give a console user another role; never leaves the organization without an owner."""
    if role not in Role.values:
        raise ValidationError({"role": f"Not a role: {role!r}."})
    roles = _locked_org_roles(organization)
    org_role = _role_of(roles, user)
    before = org_role.role
    if role == before:
        return org_role
    if before == Role.OWNER:
        _keep_an_owner(roles, user, "role")
    org_role.role = role
    org_role.save(update_fields=["role"])
    audit.record(organization=organization, kind=EventKind.MEMBERSHIP_CHANGED, actor=actor,
                 payload={"user": user.get_username(), "role": role, "before": before})
    return org_role


@transaction.atomic
def remove_org_role(*, organization: Organization, user, actor: Actor) -> None:
    """Take a user out of the organization's console (the user stays, with their other organizations);
    never the last owner."""
    roles = _locked_org_roles(organization)
    org_role = _role_of(roles, user)
    if org_role.role == Role.OWNER:
        _keep_an_owner(roles, user, "user")
    org_role.delete()
    audit.record(organization=organization, kind=EventKind.CONSOLE_USER_REMOVED, actor=actor,
                 payload={"user": user.get_username(), "role": org_role.role})


@transaction.atomic
def create_api_token(*, organization: Organization, name: str, scope: str, actor: Actor) -> tuple[ApiToken, str]:
    """Create a token; returns it with the only copy of its secret, which is never stored."""
    if ApiToken.objects.filter(organization=organization, name=name, revoked_at__isnull=True).exists():
        raise ValidationError({"name": f"A live token named '{name}' exists already."})
    raw = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(organization=organization, name=name, scope=scope,
                                    digest=ApiToken.digest_of(raw), hint=raw[:10])
    audit.record(organization=organization, kind=EventKind.TOKEN_CREATED, actor=actor,
                 payload={"token": token.pk, "name": name, "scope": scope, "hint": token.hint})
    return token, raw


@transaction.atomic
def revoke_api_token(*, token: ApiToken, actor: Actor) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(organization=token.organization, kind=EventKind.TOKEN_REVOKED, actor=actor,
                     payload={"token": token.pk, "name": token.name, "scope": token.scope})
    return token
