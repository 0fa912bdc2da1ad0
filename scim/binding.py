"""From a SCIM document to the fields the accounts services take, checked so the database never is
the one to refuse a value (a too-long name or a NUL would otherwise be a server error)."""
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import TOMBSTONE_MARK, Account, Group

from .documents import Document
from .errors import bad_request


def _max(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def _check_length(value: str, model, field: str, attribute: str) -> None:
    if value is not None and len(value) > _max(model, field):
        raise bad_request(f"{attribute} is longer than {_max(model, field)} characters.")


def _name(value, attribute: str, model, field: str) -> str:
    if value is None or not value.strip():
        raise bad_request(f"{attribute} is required.")
    if TOMBSTONE_MARK in value:
        raise bad_request(f"{attribute} cannot contain '{TOMBSTONE_MARK}': it marks deleted resources.")
    _check_length(value, model, field, attribute)
    return value


def chosen_email(emails: list[dict]) -> str:
    """The one address an account keeps: the primary one, else the work one, else the first."""
    if not emails:
        return ""
    chosen = (next((e for e in emails if e.get("primary") is True), None)
              or next((e for e in emails if (e.get("type") or "").lower() == "work"), None) or emails[0])
    address = chosen["value"].strip()
    _check_length(address, Account, "email", "emails.value")
    try:
        validate_email(address)
    except ValidationError:
        raise bad_request(f"{address!r} is not an email address.") from None
    return address


def account_fields(document: Document, *, default_active: bool) -> dict:
    values = document.values
    display_name = values["displayName"] or ""
    external_id = values["externalId"] or None
    _check_length(display_name, Account, "display_name", "displayName")
    _check_length(external_id, Account, "external_id", "externalId")
    return {
        "user_name": _name(values["userName"], "userName", Account, "user_name"),
        "display_name": display_name,
        "external_id": external_id,
        "active": default_active if values["active"] is None else values["active"],
        "email": chosen_email(values["emails"]),
    }


def group_fields(document: Document) -> tuple[dict, list[int]]:
    values = document.values
    external_id = values["externalId"] or None
    _check_length(external_id, Group, "external_id", "externalId")
    member_ids = []
    for member in values["members"]:  # their type was checked as they were read
        value = member["value"]
        if not value.isdigit() or len(value) > 18:
            raise bad_request(f"No User with id {value!r}.")
        member_ids.append(int(value))
    fields = {"display_name": _name(values["displayName"], "displayName", Group, "display_name"),
              "external_id": external_id}
    return fields, list(dict.fromkeys(member_ids))


def display_name_from_name(body) -> str:
    """An account's display name when the IdP sends only name.givenName/familyName (or formatted)."""
    if not isinstance(body, dict):
        return ""
    name = next((v for k, v in body.items() if isinstance(k, str) and k.lower() == "name"), None)
    if not isinstance(name, dict):
        return ""
    parts = {k.lower(): v for k, v in name.items() if isinstance(k, str) and isinstance(v, str)}
    text = parts.get("formatted") or " ".join(p for p in (parts.get("givenname"), parts.get("familyname")) if p)
    return text.strip().replace("\x00", "")[: _max(Account, "display_name")]
