"""A schedule fired by celery beat (DatabaseScheduler) in a real worker: its report made and mailed, once."""
import email
import io
from email import policy

from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from accounts import services as accounts
from accounts.models import Account
from reports import services
from reports.models import Report

from ..workers import celery_worker, purge_queue, require_services, wait_for
from .conftest import ADMIN

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
DATABASE_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


@pytest.fixture(autouse=True)
def clean_queue():
    require_services()
    purge_queue()


def delivered(schedule) -> bool:
    return Report.objects.filter(schedule=schedule, status="done", delivered_at__isnull=False).exists()


def test_beat_fires_a_schedule_whose_report_is_made_and_mailed_by_a_worker(org, tmp_path):
    group = accounts.create_group(organization=org, actor=ADMIN, display_name="Sales")
    accounts.create_accounts(organization=org, actor=ADMIN, accounts=[
        {"user_name": f"p{i}@acme.example", "groups": [group]} for i in range(20)])
    Account.objects.filter(organization=org).update(created_at=timezone.now() - timedelta(days=3))  # governed yesterday
    accounts.set_email_domains(organization=org, actor=ADMIN, domains=["acme.example"])
    soon = (timezone.now() + timedelta(minutes=2)).minute  # schedules run at most hourly: at this minute
    schedule = services.create_schedule(organization=org, actor=ADMIN, name="Hourly", cadence="cron",
                                        cron=f"{soon} * * * *", period="day", recipients=["dpo@acme.example"])
    mailbox = tmp_path / "mail"
    with celery_worker("--scheduler", DATABASE_SCHEDULER, beat=True,
                       EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                       EMAIL_FILE_PATH=str(mailbox)) as worker:
        wait_for(lambda: delivered(schedule), timeout=240, what=f"the scheduled report\n{worker.output()[-3000:]}",
                 interval=1)
        assert "DatabaseScheduler" in worker.output()

    report = Report.objects.get(schedule=schedule)  # one report for the day
    assert report.summary["accounts"] == 20 and report.progress == 100 and report.attempts == 1
    assert set(report.formats) == {f.format for f in report.files.all()} == {"pdf", "html", "csv", "json"}
    [message_file] = list(mailbox.iterdir())
    message = email.message_from_bytes(message_file.read_bytes().split(b"\n" + b"-" * 79 + b"\n")[0],
                                       policy=policy.default)
    assert message["To"] == "dpo@acme.example" and "Compliance report: Acme" in message["Subject"]
    [attachment] = list(message.iter_attachments())
    pdf = attachment.get_content()
    assert attachment.get_content_type() == "application/pdf"
    assert pdf == bytes(report.files.get(format="pdf").content)
    assert "Compliance report" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
