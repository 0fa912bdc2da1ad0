"""Accounts and groups as SCIM resources: their representation and ETag."""
import hashlib
from collections import defaultdict
from typing import NamedTuple

import orjson

from accounts.models import TOMBSTONE_MARK, Account, AccountGroup, Group
from governance import idp_assertions

from .schemas import AI_GOVERNANCE_URN, GROUP_URN, USER_URN

def _iso(instant) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def etag_of(resource: dict) -> str:
    """A weak ETag over the whole representation: any visible change (a membership too) changes it."""
    meta = {k: v for k, v in resource["meta"].items() if k != "version"}
    digest = hashlib.sha256(orjson.dumps({**resource, "meta": meta}, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f'W/"{digest[:32]}"'


def _finish(resource: dict) -> dict:
    resource["meta"]["version"] = etag_of(resource)
    return resource


def _extension_part(state: dict) -> dict | None:
    """The extension as a resource shows it; None when the IdP asserts nothing."""
    values = {name: value for name, value in state.items() if value is not None}
    return values or None



def user_resource(account: Account, base_url: str, groups: list[tuple[int, str]], asserted: dict | None = None) -> dict:
    ai_governance = _extension_part(asserted or {})
    resource = {"schemas": [USER_URN, AI_GOVERNANCE_URN] if ai_governance else [USER_URN], "id": str(account.pk)}
    if account.external_id is not None:
        resource["externalId"] = account.external_id
    resource["userName"] = account.user_name
    if account.display_name:
        resource["displayName"] = account.display_name
    resource["active"] = account.active
    if account.email:
        resource["emails"] = [{"value": account.email, "type": "work"}]
    if groups:
        resource["groups"] = [{"value": str(pk), "$ref": f"{base_url}/Groups/{pk}", "display": name,
                               "type": "direct"} for pk, name in groups]
    if ai_governance:
        resource[AI_GOVERNANCE_URN] = ai_governance
    resource["meta"] = {"resourceType": "User", "created": _iso(account.created_at),
                        "lastModified": _iso(account.updated_at), "location": f"{base_url}/Users/{account.pk}"}
    return _finish(resource)


def group_resource(group: Group, base_url: str, members: list[tuple[int, str]]) -> dict:
    resource = {"schemas": [GROUP_URN], "id": str(group.pk)}
    if group.external_id is not None:
        resource["externalId"] = group.external_id
    resource["displayName"] = group.display_name
    if members:
        resource["members"] = [_member(pk, name, base_url) for pk, name in members]
    resource["meta"] = {"resourceType": "Group", "created": _iso(group.created_at),
                        "lastModified": _iso(group.updated_at), "location": f"{base_url}/Groups/{group.pk}"}
    return _finish(resource)


def _member(pk: int, display_name: str, base_url: str) -> dict:
    member = {"value": str(pk), "$ref": f"{base_url}/Users/{pk}", "type": "User"}
    if display_name:
        member["display"] = display_name
    return member


def groups_of(account_ids) -> dict[int, list[tuple[int, str]]]:
    by_account = defaultdict(list)
    rows = (AccountGroup.objects.filter(account_id__in=list(account_ids))
            .values_list("account_id", "group_id", "group__display_name").order_by("group_id"))
    for account_id, group_id, name in rows:
        by_account[account_id].append((group_id, name))
    return by_account


class Member(NamedTuple):
    """One member of a group as its representation needs it."""

    display_name: str
    live: bool  # not deleted: a deleted account is not shown among members


def group_members(group_id: int) -> dict[int, Member]:
    """Every member of one group, deleted accounts included (a write must see them), in one query."""
    rows = (AccountGroup.objects.filter(group_id=group_id)
            .values_list("account_id", "account__display_name", "account__user_name"))
    return {pk: Member(name, TOMBSTONE_MARK not in user_name) for pk, name, user_name in rows}


def live_members(members: dict[int, Member | None]) -> list[tuple[int, str]]:
    """(id, displayName) of the members a representation shows, by id; those not known yet are read."""
    unknown = [pk for pk, member in members.items() if member is None]
    if unknown:
        members = {**members, **{pk: Member(name, TOMBSTONE_MARK not in user_name) for pk, name, user_name in
                                 Account.objects.filter(pk__in=unknown).values_list("pk", "display_name",
                                                                                     "user_name")}}
    return [(pk, member.display_name) for pk, member in sorted(members.items()) if member and member.live]


def members_of(group_ids) -> dict[int, list[tuple[int, str]]]:
    by_group = defaultdict(list)
    rows = (AccountGroup.objects.filter(group_id__in=list(group_ids))
            .exclude(account__user_name__contains=TOMBSTONE_MARK)
            .values_list("group_id", "account_id", "account__display_name").order_by("account_id"))
    for group_id, account_id, name in rows:
        by_group[group_id].append((account_id, name))
    return by_group


def render_users(accounts, base_url: str) -> list[dict]:
    accounts = list(accounts)
    if not accounts:
        return []
    groups = groups_of(a.pk for a in accounts)
    asserted = idp_assertions.asserted(accounts[0].organization_id, [a.pk for a in accounts])
    return [user_resource(a, base_url, groups.get(a.pk, []), asserted[a.pk]) for a in accounts]


def render_groups(groups, base_url: str) -> list[dict]:
    groups = list(groups)
    members = members_of(g.pk for g in groups)
    return [group_resource(g, base_url, members.get(g.pk, [])) for g in groups]
