"""An organization's e-mail domains, where its reports may be mailed: set by owners (console) or by the operator
(`create_org --email-domain`), kept in one normal form, and every change in the audit trail."""
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts import services
from accounts.models import Organization
from audit import services as audit
from audit.actors import SYSTEM, Actor
from audit.models import AuditEvent

from ..console.conftest import member, signed_in

pytestmark = pytest.mark.django_db
OWNER = Actor("user", None, "olga@acme.example")


def changes(org) -> list[dict]:
    audit.drain_outbox(org.pk)
    return [json.loads(body) for body in AuditEvent.objects.filter(organization=org, kind="organization.changed")
            .order_by("seq").values_list("body", flat=True)]


def test_domains_are_kept_in_one_form_and_the_change_is_audited_with_both_lists(org):
    services.set_email_domains(organization=org, actor=OWNER,
                               domains=[" Acme.Example. ", "acme.example", "bücher.example"])
    assert Organization.objects.get(pk=org.pk).email_domains == ["acme.example", "xn--bcher-kva.example"]
    services.set_email_domains(organization=org, actor=OWNER, domains=["acme.example", "xn--bcher-kva.example"])
    [event] = changes(org)  # setting the same domains again changes nothing
    assert event["actor"]["name"] == "olga@acme.example"
    assert event["payload"] == {"before": {"email_domains": []},
                                "after": {"email_domains": ["acme.example", "xn--bcher-kva.example"]}}


@pytest.mark.parametrize("domains", [["acme.example", "not a domain"], ["dpo@acme.example"], ["acme..example"],
                                     ["x" * 300 + ".example"], "acme.example", [f"d{n}.example" for n in range(51)]])
def test_what_is_not_a_list_of_domains_is_refused_and_changes_nothing(org, domains):
    services.set_email_domains(organization=org, actor=OWNER, domains=["acme.example"])
    with pytest.raises(ValidationError) as refusal:
        services.set_email_domains(organization=org, actor=OWNER, domains=domains)
    assert list(refusal.value.message_dict) == ["email_domains"]
    assert Organization.objects.get(pk=org.pk).email_domains == ["acme.example"] and len(changes(org)) == 1


def test_an_address_is_inside_only_if_its_domain_is_exactly_one_of_them(org):
    services.set_email_domains(organization=org, actor=OWNER, domains=["acme.example", "bücher.example"])
    inside = ["dpo@acme.example", "DPO@ACME.EXAMPLE", "a@bücher.example", "a@xn--bcher-kva.example",
              '"x@evil.example"@acme.example']
    outside = ["dpo@eu.acme.example", "dpo@evil.example", "dpo@acme.example.evil.example", "acme.example", "",
               "dpo@[127.0.0.1]"]
    assert [org.mails_to(address) for address in inside] == [True] * len(inside)
    assert [org.mails_to(address) for address in outside] == [False] * len(outside)


# --- create_org --email-domain ---------------------------------------------------------------------------------

def test_create_org_sets_the_domains_given(capsys):
    call_command("create_org", "--slug", "initech", "--name", "Initech", "--email-domain", "initech.example",
                 "--email-domain", "Initech-Legal.example")
    organization = Organization.objects.get(slug="initech")
    assert organization.email_domains == ["initech.example", "initech-legal.example"]
    assert "initech.example, initech-legal.example" in capsys.readouterr().out
    assert [e["payload"]["after"] for e in changes(organization)] == [
        {"email_domains": ["initech.example", "initech-legal.example"]}]


def test_create_org_with_a_bad_domain_creates_nothing():
    with pytest.raises(CommandError, match="Not a domain name"):
        call_command("create_org", "--slug", "initech", "--name", "Initech", "--email-domain", "not a domain")
    assert not Organization.objects.filter(slug="initech").exists()


# --- the console's settings page -------------------------------------------------------------------------------

def test_an_owner_sets_the_domains_in_the_console(org):
    owner = signed_in(member(org, "owner"))
    response = owner.post(reverse("console:settings"), {"email_domains": "acme.example\nacme-legal.example"})
    assert response.status_code == 302
    assert Organization.objects.get(pk=org.pk).email_domains == ["acme.example", "acme-legal.example"]
    page = owner.get(reverse("console:settings"))
    assert b"acme-legal.example" in page.content and b"Save the domains" in page.content
    assert changes(org)[0]["actor"]["kind"] == "user"


def test_a_bad_domain_in_the_console_is_shown_and_saves_nothing(org):
    owner = signed_in(member(org, "owner"))
    response = owner.post(reverse("console:settings"), {"email_domains": "acme.example\nevil example/x"})
    assert response.status_code == 400 and b"Not a domain name" in response.content
    assert Organization.objects.get(pk=org.pk).email_domains == []


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admins_and_auditors_see_the_domains_but_cannot_change_them(org, role):
    services.set_email_domains(organization=org, actor=SYSTEM, domains=["acme.example"])
    client = signed_in(member(org, role))
    page = client.get(reverse("console:settings"))
    assert page.status_code == 200 and b"acme.example" in page.content and b"Save the domains" not in page.content
    assert client.post(reverse("console:settings"), {"email_domains": "evil.example"}).status_code == 403
    assert Organization.objects.get(pk=org.pk).email_domains == ["acme.example"]
