"""Liveness and readiness probes: answered for any Host and over plain HTTP, 503 naming what fails."""
import pytest
from django.test import Client

from config import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def probe():
    return Client(HTTP_HOST="10.0.0.7")  # a load balancer asks by address, not by the site's name


def test_liveness_answers_for_any_host(probe, settings):
    settings.ALLOWED_HOSTS = ["console.example"]
    response = probe.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert Client(HTTP_HOST="10.0.0.7").get("/login/").status_code == 400  # the rest of the site does check


def test_ready_when_the_database_answers_and_every_migration_is_applied(probe, settings):
    settings.SECURE_SSL_REDIRECT = True  # production redirects to HTTPS; probes are answered all the same
    response = probe.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
    assert body["checks"]["broker"] == ("ok" if settings.CELERY_BROKER_URL else
                                        "not configured (tasks run in the web process)")


def test_not_ready_while_the_broker_refuses_connections(probe, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    response = probe.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["broker"].startswith("failing: ")
    assert body["checks"]["database"] == "ok"


def test_not_ready_while_a_migration_is_missing(probe, monkeypatch):
    from django.db.migrations.recorder import MigrationRecorder
    monkeypatch.setattr(health, "_migrated", False)
    MigrationRecorder.Migration.objects.filter(app="accounts").order_by("-applied", "-id").first().delete()
    response = probe.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "failing: 1 migration(s) not applied"


def test_probes_answer_only_reads(probe):
    assert probe.post("/healthz").status_code != 200 and probe.post("/readyz").status_code != 200
