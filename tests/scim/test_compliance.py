"""scim2-tester, an independent checker of RFC 7643/7644, run against a live server: no failure.

It reads /ServiceProviderConfig, /ResourceTypes and /Schemas, builds its models from what they
publish (the AI-governance extension included), then creates, reads, lists with attributes,
replaces, patches (add, replace, remove of every writable attribute) and deletes Users and Groups.
"""
import httpx2
import pytest
from django.db import connection
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from accounts import services as accounts
from audit.actors import SYSTEM

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FAILED = (Status.ERROR, Status.CRITICAL, Status.DEVIATION)


@pytest.fixture
def append_only_rows_removed_afterwards():
    """Let the test database be flushed after a transactional test that wrote append-only rows.

    PostgreSQL flushes with TRUNCATE, which row triggers do not see. SQLite flushes with DELETE,
    which the append-only triggers refuse: drop them, empty their tables, and put them back.
    """
    yield
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
                       "AND sql LIKE '%append-only table%'")
        triggers = cursor.fetchall()
        for name, _, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        for table in sorted({table for _, table, _ in triggers}):
            cursor.execute(f'DELETE FROM "{table}"')
        for _, _, sql in triggers:
            cursor.execute(sql)


def test_scim2_tester_finds_no_failure(live_server, append_only_rows_removed_afterwards):
    organization = accounts.create_organization(slug="compliance", name="Compliance", actor=SYSTEM)
    _, raw = accounts.create_api_token(organization=organization, name="scim2-tester", scope="scim", actor=SYSTEM)
    # A connection per request: on a kept-alive connection the test server's split writes meet the
    # client's delayed ACK, and each request waits 40 ms for nothing.
    http = httpx2.Client(base_url=f"{live_server.url}/scim/v2", headers={"Authorization": f"Bearer {raw}"},
                         timeout=30, limits=httpx2.Limits(max_keepalive_connections=0))
    with http:
        results = check_server(SyncSCIMClient(http))

    failures = [f"{r.status.name} {r.resource_type or ''} {r.title}: {r.reason}" for r in results if r.status in FAILED]
    assert not failures, "\n".join(failures)
    passed = [r for r in results if r.status == Status.SUCCESS]
    assert len(passed) >= 70
    assert {r.resource_type for r in passed} >= {"User", "Group"}
    assert not [r.title for r in results if r.status == Status.SKIPPED]  # every check ran
