import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services as accounts
from audit.actors import SYSTEM

from .factories import AccountFactory, GroupFactory, OrgRoleFactory, OrganizationFactory, sign_in


@pytest.fixture(autouse=True)
def fresh_compiled_policies():
    """Organizations reuse ids and policy versions across rolled-back tests: start each test without
    another test's compiled policies (a process keeps them per organization id)."""
    from governance.selectors import forget_compiled_policies
    forget_compiled_policies()
    yield
    forget_compiled_policies()


@pytest.fixture
def org(db):
    return OrganizationFactory(slug="acme", name="Acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="globex", name="Globex")


def token_client(organization, scope="api"):
    _, raw = accounts.create_api_token(organization=organization, name=f"test-{scope}", scope=scope, actor=SYSTEM)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def sales(org):
    """A group of `org` named Sales."""
    return GroupFactory(organization=org, display_name="Sales")


@pytest.fixture
def people(org, sales):
    """Three accounts of `org`, in Sales."""
    return [AccountFactory(organization=org, groups=[sales]) for _ in range(3)]


@pytest.fixture
def api(org):
    """An API client holding an `api` token of `org`."""
    return token_client(org)


@pytest.fixture
def other_api(other_org):
    return token_client(other_org)


def session_client(organization, role):
    org_role = OrgRoleFactory(organization=organization, role=role)
    return sign_in(APIClient(), org_role.user)


@pytest.fixture
def admin_session(org):
    return session_client(org, "admin")


@pytest.fixture
def auditor_session(org):
    return session_client(org, "auditor")


def services_configured() -> bool:
    from django.conf import settings
    return settings.USING_POSTGRES and bool(settings.CELERY_BROKER_URL)


def pytest_collection_modifyitems(config, items):
    """Service tests run on PostgreSQL + Redis; elsewhere they skip, except in CI where they must run.

    A transactional test must roll back to the seeded rows (serialized_rollback): its flush would
    otherwise recreate the content types under new ids, and every serialized-rollback test after it
    on PostgreSQL would fail to restore them."""
    import os
    unserialized = [item.nodeid for item in items
                    if ((marker := item.get_closest_marker("django_db")) is not None and marker.kwargs.get("transaction")
                        or {"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())))
                    and not (marker is not None and marker.kwargs.get("serialized_rollback"))]
    if unserialized:
        raise pytest.UsageError("transactional tests without serialized_rollback=True: " + ", ".join(unserialized))
    if services_configured() or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="needs DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def eager_celery():
    """Run tasks in-process, as the embedded default does, even when a broker is configured."""
    from config.celery import app
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def append_only_tables_flushable(request):
    """Let the flush after a transactional test truncate the append-only tables on PostgreSQL.

    Their TRUNCATE triggers refuse Django's flush as they refuse anyone's. So once the test is over
    and before the flush, this connection is put in replica mode, where ordinary triggers do not
    fire (as tests/audit/test_chain.py's `behind_the_triggers_back` does; it needs a superuser).
    The flush closes the connection right after, and the next test gets one with the triggers on.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = ((marker is not None and marker.kwargs.get("transaction"))
                     or {"transactional_db", "live_server"} & set(request.fixturenames))
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so its flush comes after this teardown
    yield
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
