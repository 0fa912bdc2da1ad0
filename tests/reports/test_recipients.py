"""Reports are mailed only inside the organization's own e-mail domains, and schedules run at most hourly:
an API token cannot send the compliance report to an outsider, nor every minute."""
import json
from importlib import import_module

import pytest
from django.apps import apps
from django.core import mail
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from accounts import services as accounts
from audit import services as audit
from audit.models import AuditEvent
from reports import services
from reports.models import Report, ReportSchedule

from .conftest import ADMIN

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_domains(org):
    return accounts.set_email_domains(organization=org, actor=ADMIN, domains=["acme.example"])


def refused(response) -> list[str]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert not ReportSchedule.objects.exists() and not PeriodicTask.objects.filter(
        task="reports.tasks.run_schedule").exists()
    return [error["field"] for error in response.json()["errors"]]


def test_a_recipient_outside_the_organizations_domains_is_refused_naming_its_place(api, acme_domains):
    response = api.post("/api/v1/report-schedules/", {
        "name": "Monthly", "cadence": "monthly", "recipients": ["dpo@acme.example", "attacker@evil.example"]},
        format="json")
    assert refused(response) == ["recipients[1]"]
    assert "acme.example" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("address", ["dpo@eu.acme.example", "dpo@acme.example.evil.example", "dpo@xacme.example"])
def test_subdomains_and_lookalikes_are_outside(api, acme_domains, address):
    response = api.post("/api/v1/report-schedules/", {"name": "Monthly", "cadence": "monthly",
                                                      "recipients": [address]}, format="json")
    assert refused(response) == ["recipients[0]"]


def test_an_organization_without_domains_mails_nobody_and_says_how_to_set_them(api):
    response = api.post("/api/v1/report-schedules/", {"name": "Monthly", "cadence": "monthly",
                                                      "recipients": ["dpo@acme.example"]}, format="json")
    assert refused(response) == ["recipients"]
    assert "Settings" in response.json()["errors"][0]["detail"]
    assert api.post("/api/v1/report-schedules/", {"name": "Archive", "cadence": "monthly"},
                    format="json").status_code == 201  # a schedule that mails nobody is fine


def test_addresses_inside_the_domains_are_accepted_whatever_their_case(api, org):
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=["acme.example", "Acme-Legal.example"])
    response = api.post("/api/v1/report-schedules/", {
        "name": "Monthly", "cadence": "monthly", "recipients": ["DPO@ACME.EXAMPLE", "counsel@acme-legal.example"]},
        format="json")
    assert response.status_code == 201, response.content
    assert response.json()["recipients"] == ["DPO@ACME.EXAMPLE", "counsel@acme-legal.example"]


def test_changing_the_recipients_to_an_outsider_is_refused_and_changes_nothing(api, acme_domains):
    schedule = api.post("/api/v1/report-schedules/", {"name": "Monthly", "cadence": "monthly",
                                                      "recipients": ["dpo@acme.example"]}, format="json").json()
    response = api.patch(f"/api/v1/report-schedules/{schedule['id']}/",
                         {"recipients": ["attacker@evil.example"]}, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["recipients[0]"]
    assert ReportSchedule.objects.get().recipients == ["dpo@acme.example"]


@pytest.mark.parametrize("cron", ["* * * * *", "*/5 * * * *", "0,30 * * * *", "0-1 6 * * *", "*/60 6 * * *"])
def test_a_schedule_that_could_fire_more_than_hourly_is_refused(api, cron):
    response = api.post("/api/v1/report-schedules/", {"name": "Often", "cadence": "cron", "cron": cron},
                        format="json")
    assert refused(response) == ["cron"]
    assert "hourly" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("cron", ["0 * * * *", "59 */2 * * *", "5 6 * * 1-5"])
def test_hourly_or_rarer_schedules_are_accepted(api, cron):
    response = api.post("/api/v1/report-schedules/", {"name": "Hourly", "cadence": "cron", "cron": cron},
                        format="json")
    assert response.status_code == 201, response.content


def test_a_recipient_whose_domain_was_removed_since_is_skipped_and_named_on_the_report(
        org, settings, django_capture_on_commit_callbacks, eager_celery):
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=["acme.example", "partner.example"])
    schedule = services.create_schedule(organization=org, actor=ADMIN, name="Daily", cadence="cron",
                                        cron="0 6 * * *", formats=["json"],
                                        recipients=["dpo@acme.example", "auditor@partner.example"])
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=["acme.example"])

    with django_capture_on_commit_callbacks(execute=True):
        report = services.run_schedule(schedule.pk)

    report.refresh_from_db()
    [message] = mail.outbox
    assert message.to == ["dpo@acme.example"]
    assert report.delivered_at is not None and report.undelivered_to == ["auditor@partner.example"]


def test_a_report_whose_every_recipient_is_now_outside_is_mailed_to_nobody(
        org, django_capture_on_commit_callbacks, eager_celery, api):
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=["partner.example"])
    schedule = services.create_schedule(organization=org, actor=ADMIN, name="Daily", cadence="cron",
                                        cron="0 6 * * *", formats=["json"], recipients=["auditor@partner.example"])
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=[])

    with django_capture_on_commit_callbacks(execute=True):
        report = services.run_schedule(schedule.pk)

    assert mail.outbox == []
    shown = api.get(f"/api/v1/reports/{report.pk}/").json()
    assert (shown["status"], shown["delivered_at"], shown["undelivered_to"]) == (
        "done", None, ["auditor@partner.example"])
    assert Report.objects.get().delivery_attempts == 1


def test_schedules_saved_before_the_limit_are_made_hourly_on_upgrade(org):
    schedule = services.create_schedule(organization=org, actor=ADMIN, name="Often", cadence="cron", cron="0 6 * * *")
    often = CrontabSchedule.objects.create(timezone="UTC", minute="*/15", hour="6")
    ReportSchedule.objects.filter(pk=schedule.pk).update(cron="*/15 6 * * *")
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(crontab=often)

    import_module("reports.migrations.0002_recipients_in_domains_and_hourly_schedules").at_most_hourly(apps, None)

    schedule.refresh_from_db()
    assert schedule.cron == "0 6 * * *" and schedule.periodic_task.crontab.minute == "0"
    audit.drain_outbox(org.pk)
    last = json.loads(AuditEvent.objects.filter(organization=org, kind="report.scheduled").latest("seq").body)
    assert (last["payload"]["before"]["cron"], last["payload"]["after"]["cron"]) == ("*/15 6 * * *", "0 6 * * *")
