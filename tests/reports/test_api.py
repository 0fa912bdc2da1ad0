"""Reports and their schedules over the API: request (202), follow, download; schedules kept as beat entries."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts import services as accounts
from audit import services as audit
from audit.actors import SYSTEM
from audit.models import AuditEvent
from reports.models import Report, ReportSchedule

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def workers_after_commit(django_capture_on_commit_callbacks, eager_celery):
    """What a commit hands to the workers runs eagerly here, as the embedded default does."""
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    yield


_after_commit = None


def request_report(api, **body):
    with _after_commit(execute=True):
        return api.post("/api/v1/reports/", body, format="json")


def last_month():
    today = timezone.now().date()
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1).isoformat(), first.isoformat()


def test_a_requested_report_is_accepted_generated_and_downloadable_in_every_format(api, org):
    start, end = last_month()
    response = request_report(api, period_start=start, period_end=end)
    assert response.status_code == 202, response.content
    created = response.json()
    assert response["Location"].endswith(f"/api/v1/reports/{created['id']}/")

    report = api.get(f"/api/v1/reports/{created['id']}/").json()
    assert (report["status"], report["progress"], report["formats"]) == ("done", 100, ["pdf", "html", "csv", "json"])
    assert report["requested_by"]["kind"] == "token" and report["summary"]["accounts"] == 0
    assert {f["format"] for f in report["files"]} == {"pdf", "html", "csv", "json"}

    magic = {"pdf": b"%PDF", "html": b"<!DOCTYPE html>", "csv": b"PK\x03\x04", "json": b"{"}
    for file in report["files"]:
        download = api.get(file["url"])
        assert download.status_code == 200, file
        assert download.content.startswith(magic[file["format"]])
        assert download["Content-Type"] == file["content_type"]
        assert download["Content-Disposition"] == f'attachment; filename="{file["filename"]}"'
        assert int(download["Content-Length"]) == file["size"] == len(download.content)

    listed = api.get("/api/v1/reports/").json()["results"]
    assert [r["id"] for r in listed] == [created["id"]]


def test_only_the_formats_asked_for_are_made(api):
    start, end = last_month()
    report = request_report(api, period_start=start, period_end=end, formats=["json", "pdf"]).json()
    assert sorted(f["format"] for f in api.get(f"/api/v1/reports/{report['id']}/").json()["files"]) == ["json", "pdf"]
    missing = api.get(f"/api/v1/reports/{report['id']}/download/", {"format": "html"})
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    assert api.get(f"/api/v1/reports/{report['id']}/download/", {"format": "xls"}).status_code == 400
    assert api.get(f"/api/v1/reports/{report['id']}/download/").status_code == 400


def test_a_report_not_generated_yet_cannot_be_downloaded(api):
    start, end = last_month()
    response = api.post("/api/v1/reports/", {"period_start": start, "period_end": end}, format="json")  # no worker
    assert response.status_code == 202 and response.json()["status"] == "queued"
    download = api.get(f"/api/v1/reports/{response.json()['id']}/download/", {"format": "pdf"})
    assert download.status_code == 409 and "queued" in download.json()["detail"]


@pytest.mark.parametrize("body, field", [
    ({"period_start": "2026-03-01", "period_end": "2026-02-01"}, "period_end"),
    ({"period_start": "2024-01-01", "period_end": "2025-06-01"}, "period_end"),
    ({"period_start": "2026-01-01", "period_end": "2999-01-01"}, "period_end"),
    ({"period_start": "March", "period_end": "2026-02-01"}, "period_start"),
    ({"period_start": "2026-01-01", "period_end": "2026-02-01", "formats": ["docx"]}, "formats"),
    ({"period_start": "2026-01-01", "period_end": "2026-02-01", "formats": []}, "formats"),
    ({"period_start": "2026-01-01", "period_end": "2026-02-01", "colour": "red"}, "colour"),
])
def test_bad_requests_are_refused_naming_the_field(api, body, field):
    response = api.post("/api/v1/reports/", body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in [error["field"].split(".")[0] for error in response.json()["errors"]]
    assert not Report.objects.exists()


def test_reports_of_another_organization_do_not_exist(api, other_api):
    start, end = last_month()
    report = request_report(api, period_start=start, period_end=end).json()
    assert other_api.get(f"/api/v1/reports/{report['id']}/").status_code == 404
    assert other_api.get(f"/api/v1/reports/{report['id']}/download/", {"format": "pdf"}).status_code == 404
    assert other_api.get("/api/v1/reports/").json()["results"] == []


def test_auditors_read_and_download_but_do_not_request(api, auditor_session):
    start, end = last_month()
    report = request_report(api, period_start=start, period_end=end).json()
    assert auditor_session.get(f"/api/v1/reports/{report['id']}/download/", {"format": "json"}).status_code == 200
    assert auditor_session.post("/api/v1/reports/", {"period_start": start, "period_end": end},
                                format="json").status_code == 403
    assert auditor_session.post("/api/v1/report-schedules/", {"name": "x", "cadence": "weekly"},
                                format="json").status_code == 403


def beat_entry(schedule_id) -> PeriodicTask:
    return ReportSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule_id).periodic_task


def test_a_schedule_is_kept_as_a_celery_beat_entry_through_its_life(api, org):
    accounts.set_email_domains(organization=org, actor=SYSTEM, domains=["acme.example"])
    created = api.post("/api/v1/report-schedules/", {"name": "Monthly to the DPO", "cadence": "monthly",
                                                     "recipients": ["dpo@acme.example"]}, format="json")
    assert created.status_code == 201, created.content
    schedule = created.json()
    assert (schedule["cron"], schedule["period"], schedule["formats"]) == ("0 6 1 * *", "month",
                                                                           ["pdf", "html", "csv", "json"])
    next_run = schedule["next_run_at"]
    assert next_run[8:19] == "01T06:00:00"
    task = beat_entry(schedule["id"])
    assert (task.task, json.loads(task.args), task.enabled) == ("reports.tasks.run_schedule", [schedule["id"]], True)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == ("0", "6", "1")

    changed = api.patch(f"/api/v1/report-schedules/{schedule['id']}/",
                        {"cadence": "cron", "cron": "30  7 * * 1-5", "period": "day"}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["cron"], changed.json()["period"]) == ("30 7 * * 1-5", "day")
    task = beat_entry(schedule["id"])
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "7", "1-5")

    paused = api.patch(f"/api/v1/report-schedules/{schedule['id']}/", {"active": False}, format="json").json()
    assert paused["next_run_at"] is None and beat_entry(schedule["id"]).enabled is False

    assert api.delete(f"/api/v1/report-schedules/{schedule['id']}/").status_code == 204
    assert not PeriodicTask.objects.filter(task="reports.tasks.run_schedule").exists()

    audit.drain_outbox(org.pk)
    actions = [json.loads(body)["payload"]["action"] for body in AuditEvent.objects.filter(
        organization=org, kind="report.scheduled").order_by("seq").values_list("body", flat=True)]
    assert actions == ["created", "changed", "changed", "deleted"]


@pytest.mark.parametrize("body, field", [
    ({"name": "a", "cadence": "cron"}, "cron"),
    ({"name": "a", "cadence": "cron", "cron": "61 * * * *"}, "cron"),
    ({"name": "a", "cadence": "cron", "cron": "* * *"}, "cron"),
    ({"name": "a", "cadence": "weekly", "cron": "0 1 * * *"}, "cron"),
    ({"name": "a", "cadence": "monthly", "period": "day"}, "period"),
    ({"name": "a", "cadence": "yearly"}, "cadence"),
    ({"name": "a", "cadence": "weekly", "recipients": ["not-an-address"]}, "recipients"),
    ({"name": "a", "cadence": "weekly", "formats": ["pdf", "doc"]}, "formats"),
])
def test_bad_schedules_are_refused_naming_the_field(api, body, field):
    response = api.post("/api/v1/report-schedules/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in [error["field"].split(".")[0] for error in response.json()["errors"]]
    assert not PeriodicTask.objects.filter(task="reports.tasks.run_schedule").exists()


def test_schedule_names_are_unique_within_an_organization(api, other_api):
    assert api.post("/api/v1/report-schedules/", {"name": "Weekly", "cadence": "weekly"}, format="json").status_code == 201
    again = api.post("/api/v1/report-schedules/", {"name": "Weekly", "cadence": "weekly"}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "name"
    assert other_api.post("/api/v1/report-schedules/", {"name": "Weekly", "cadence": "weekly"},
                          format="json").status_code == 201
    assert len(other_api.get("/api/v1/report-schedules/").json()["results"]) == 1


def test_the_schema_documents_reports_and_schedules(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/v1/reports/", "/api/v1/reports/{id}/download/", "/api/v1/report-schedules/{id}/"} <= set(paths)
