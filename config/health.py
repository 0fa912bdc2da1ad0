"""Liveness and readiness for load balancers, process managers and orchestrators.

Answered before any other middleware: a probe comes over plain HTTP from an address that is not
in ALLOWED_HOSTS, and must get its answer, not a redirect to HTTPS or a 400. Neither answer
names an organization or counts anything of one.

- `GET /healthz`: the process serves requests (nothing else is checked).
- `GET /readyz`: it can do its work: the database answers, every migration of this release is
  applied, and the broker (when one is configured) accepts a connection. 200, or 503 naming the
  failing checks.
"""
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerError  # what a transport's connection errors become

LIVENESS, READINESS = "/healthz", "/readyz"
BROKER_TIMEOUT_SECONDS = 1.0

_migrated = False  # once every migration is applied it stays so for this release: checked until then


def database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def migrations() -> str:
    global _migrated
    if not _migrated:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            return f"failing: {len(pending)} migration(s) not applied"
        _migrated = True
    return "ok"


def broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "not configured (tasks run in the web process)"
    # socket timeouts too: a Redis that accepts connections and answers nothing would hold the probe forever
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS,
                    transport_options={"socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
                                       "socket_timeout": BROKER_TIMEOUT_SECONDS}) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    return "ok"


CHECKS = {"database": database, "migrations": migrations, "broker": broker}


def readiness() -> tuple[bool, dict]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except (DatabaseError, OSError, BrokerError) as error:
            results[name] = f"failing: {type(error).__name__}"
    return all(not value.startswith("failing") for value in results.values()), results


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == LIVENESS and request.method in ("GET", "HEAD"):
            return JsonResponse({"status": "ok"})
        if request.path == READINESS and request.method in ("GET", "HEAD"):
            ready, checks = readiness()
            return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                                status=200 if ready else 503)
        return self.get_response(request)
