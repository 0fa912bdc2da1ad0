"""The chain built by real `celery worker` processes on PostgreSQL and Redis, including when they die."""
import threading

import pytest
from django.db import connection, transaction

from audit import services as audit
from audit.actors import SYSTEM
from audit.models import AuditEvent, OutboxEntry
from audit.selectors import verify_chain

from ..workers import celery_worker, purge_queue, require_services, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def clean_queue():
    require_services()
    purge_queue()


def chained(org) -> int:
    return AuditEvent.objects.filter(organization=org).count()


def record_changes(org, n, start=0):
    with transaction.atomic():
        audit.record_many(organization=org, kind="account.changed", actor=SYSTEM,
                          entries=[(None, {"n": i}) for i in range(start, start + n)])


def test_a_policy_change_through_the_api_is_chained_within_seconds(api, org):
    with celery_worker():
        response = api.post("/api/v1/policy-rules/", {"scope": "organization", "feature": "meeting_summary",
                                                      "effect": "allow", "reason": "pilot"}, format="json")
        assert response.status_code == 201, response.content
        rule = response.json()["id"]
        api.patch(f"/api/v1/policy-rules/{rule}/", {"effect": "deny", "reason": "pilot over"}, format="json")
        wait_for(lambda: AuditEvent.objects.filter(organization=org, kind="policy.changed").count() == 2,
                 timeout=15, what="the change to be chained")
    event = AuditEvent.objects.filter(organization=org, kind="policy.changed").order_by("seq").last()
    assert event.actor_kind == "token"
    payload = __import__("json").loads(event.body)["payload"]
    assert (payload["before"]["effect"], payload["after"]["effect"]) == ("allow", "deny")
    assert verify_chain(org).valid


def test_a_worker_killed_mid_drain_loses_and_duplicates_nothing(org):
    total = 50_000
    with celery_worker(AUDIT_DRAIN_BATCH="500") as worker:
        record_changes(org, total)
        wait_for(lambda: chained(org) >= 5_000, timeout=120, what="the drain to get going")
        worker.kill()  # SIGKILL the whole worker: its message stays unacknowledged in Redis
    halfway = chained(org)
    assert 0 < halfway < total, "the worker must die mid-drain for this test to mean anything"

    # A new worker with beat: the sweep re-drives the outbox long before Redis's visibility timeout.
    with celery_worker(beat=True, AUDIT_SWEEP_SECONDS="1", AUDIT_SWEEP_AFTER_SECONDS="0"):
        wait_for(lambda: not OutboxEntry.objects.filter(organization=org).exists(), timeout=180,
                 what="the sweep to chain the rest")
    assert chained(org) == total
    assert AuditEvent.objects.filter(organization=org).values("outbox_id").distinct().count() == total
    payloads = sorted(__import__("json").loads(b)["payload"]["n"]
                      for b in AuditEvent.objects.filter(organization=org).values_list("body", flat=True))
    assert payloads == list(range(total))
    result = verify_chain(org)
    assert result.valid and result.events_checked == total


def test_two_workers_draining_one_organization_keep_it_linear(org):
    with celery_worker(concurrency=2, AUDIT_DRAIN_BATCH="200"), \
            celery_worker(concurrency=2, AUDIT_DRAIN_BATCH="200"):
        for batch in range(40):  # 40 commits, 40 drain tasks racing for the same chain head
            record_changes(org, 250, start=batch * 250)
        wait_for(lambda: chained(org) == 10_000, timeout=120, what="both workers to chain everything")
    seqs = list(AuditEvent.objects.filter(organization=org).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 10_001))
    assert verify_chain(org).valid


def test_two_drains_at_once_in_one_process_wait_for_each_other(org):
    record_changes(org, 3_000)
    results, errors = [], []

    def drain():
        try:
            results.append(audit.drain_outbox(org.pk, batch_size=100))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sum(results) == 3_000
    assert verify_chain(org).valid and chained(org) == 3_000


def test_verification_while_drains_commit_is_not_fooled(org):
    record_changes(org, 5_000)
    audit.drain_outbox(org.pk)
    stop, errors = threading.Event(), []

    def keep_appending():
        n = 0
        try:
            while not stop.is_set():
                record_changes(org, 50, start=100_000 + n)
                audit.drain_outbox(org.pk)
                n += 50
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        results = [verify_chain(org) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    assert not errors
    assert all(r.valid for r in results), [r.problem for r in results]
