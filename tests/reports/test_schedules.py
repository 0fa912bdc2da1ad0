"""A schedule's run: last month's report, made once and mailed once, the PDF attached, links to the rest;
and the worker side: idempotent generation with progress, failures recorded, lost work re-driven."""
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from accounts import services as accounts
from audit.actors import SYSTEM
from reports import services, tasks
from reports.models import Report

from .conftest import ADMIN

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def workers_after_commit(django_capture_on_commit_callbacks, eager_celery, settings):
    settings.SITE_URL = "https://governance.acme.example"
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    yield


_after_commit = None


def run(schedule, **kwargs):
    with _after_commit(execute=True):
        return services.run_schedule(schedule.pk, **kwargs)


@pytest.fixture
def monthly(org):
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=["acme.example"])
    return services.create_schedule(organization=org, actor=ADMIN, name="Monthly to the DPO", cadence="monthly",
                                    recipients=["dpo@acme.example", "ciso@acme.example"])


def test_a_run_mails_last_months_report_with_the_pdf_and_links_to_the_rest(org, month, monthly):
    report = run(monthly)
    report.refresh_from_db()
    assert (report.period_start, report.period_end) == (month.start, month.end)
    assert report.status == "done" and report.delivered_at is not None and report.schedule == monthly

    [message] = mail.outbox
    assert message.to == ["dpo@acme.example", "ciso@acme.example"]
    assert message.subject == f"Compliance report: Acme, {report.period_label}"
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (report.files.get(format="pdf").filename, "application/pdf")
    assert content.startswith(b"%PDF")
    for fmt in ("html", "csv", "json"):
        assert f"https://governance.acme.example/api/v1/reports/{report.pk}/download/?format={fmt}" in message.body
    assert "Violations (flows without basis):  4 (3 accounts)" in message.body


def test_beat_firing_again_for_the_same_month_makes_and_sends_nothing_more(org, month, monthly):
    first = run(monthly)
    again = run(monthly, now=timezone.now() + timedelta(hours=1))
    assert again.pk == first.pk and Report.objects.count() == 1 and len(mail.outbox) == 1


def test_a_report_whose_task_was_lost_is_made_by_the_next_run(org, monthly):
    report = services.run_schedule(monthly.pk)  # its task never reached a worker
    Report.objects.filter(pk=report.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    run(monthly)
    report.refresh_from_db()
    assert report.status == "done" and report.attempts == 1 and len(mail.outbox) == 1


def test_a_report_done_but_not_delivered_is_delivered_by_the_next_run(org, monthly):
    with mock.patch.object(services.EmailMessage, "send", side_effect=OSError("mail server away")):
        run(monthly)  # the delivery task fails and is retried later, with backoff
    report = Report.objects.get()
    assert report.status == "done" and report.delivered_at is None and report.delivery_attempts == 1
    run(monthly)
    report.refresh_from_db()
    assert report.delivered_at is not None and len(mail.outbox) == 1


def test_a_schedule_without_recipients_still_makes_its_reports(org):
    quiet = services.create_schedule(organization=org, actor=ADMIN, name="Archive", cadence="cron", cron="0 2 * * *",
                                     formats=["json"])
    report = run(quiet)
    report.refresh_from_db()
    assert report.status == "done" and (report.period_end - report.period_start).days == 1
    assert mail.outbox == []


def test_an_inactive_or_deleted_schedule_does_nothing(org, monthly):
    services.update_schedule(schedule=monthly, actor=ADMIN, active=False)
    assert run(monthly) is None
    schedule_id = monthly.pk
    services.delete_schedule(schedule=monthly, actor=ADMIN)
    assert services.run_schedule(schedule_id) is None and not Report.objects.exists()


def queued(org):
    return services.request_report(organization=org, actor=SYSTEM, period_start=timezone.now().date() - timedelta(days=7),
                                   period_end=timezone.now().date(), formats=["json"], enqueue=False)


def test_generation_is_idempotent_and_stores_its_progress(org):
    report = queued(org)
    seen = []
    real_render = services.render

    def render(document, formats):
        seen.append(Report.objects.values_list("status", "progress").get(pk=report.pk))
        return real_render(document, formats)

    with mock.patch.object(services, "render", side_effect=render):
        assert tasks.generate_report.delay(report.pk).get() == "done"
    assert seen == [("running", 80)]
    file = Report.objects.get(pk=report.pk).files.get()
    assert tasks.generate_report.delay(report.pk).get() is None  # done: nothing to do
    assert Report.objects.get(pk=report.pk).files.get().sha256 == file.sha256


def test_a_run_that_fails_says_why(org):
    report = queued(org)
    with mock.patch.object(services, "render", side_effect=ValueError("no room on the page")):
        with pytest.raises(ValueError):
            services.generate_report(report.pk)
    report.refresh_from_db()
    assert report.status == "failed" and report.error == "ValueError: no room on the page"
    assert not report.files.exists()


def test_the_sweep_re_drives_a_lost_report_and_gives_up_after_five_attempts(org):
    lost, hopeless = queued(org), queued(org)
    long_ago = timezone.now() - timedelta(hours=1)
    Report.objects.filter(pk=lost.pk).update(status="running", attempts=1, updated_at=long_ago)  # its worker died
    Report.objects.filter(pk=hopeless.pk).update(status="running", attempts=5, updated_at=long_ago)
    outcome = tasks.sweep_reports.delay().get()
    assert outcome["regenerated"] == [lost.pk] and outcome["given_up"] == [hopeless.pk]
    assert Report.objects.get(pk=lost.pk).status == "done"
    assert Report.objects.get(pk=hopeless.pk).status == "failed"


def test_the_registered_task_names_do_not_change(org):
    # beat entries name these tasks in the database: a rename would silently stop every schedule
    from config.celery import app
    assert {"reports.tasks.generate_report", "reports.tasks.deliver_report", "reports.tasks.run_schedule",
            "reports.tasks.sweep_reports"} <= set(app.tasks)
