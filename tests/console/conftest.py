import os
import shutil

import pytest
from django.db import connection
from django.test import Client

from accounts import services as accounts
from audit.actors import SYSTEM
from audit.services import drain_outbox
from config import append_only
from console.demo_data import seed_activity
from flows.batches import process_batch
from flows.models import FlowBatch
from governance import services as governance
from governance.models import AIFeature, DataCategory, Purpose

from ..factories import UserFactory, sign_in

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(config, items):
    """Browser tests need Playwright and Chromium; they skip without them, except in CI where they must run."""
    try:
        import playwright  # noqa: F401
        available = shutil.which(CHROMIUM) is not None
    except ImportError:
        available = False
    if available or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=f"needs the playwright package and {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def member(organization, role):
    """A console user with `role` in `organization`; their password is PASSWORD."""
    user = UserFactory()
    accounts.add_org_role(organization=organization, user=user, role=role, actor=SYSTEM)
    return user


def signed_in(user, **client_options) -> Client:
    """A browser signed in as `user`."""
    return sign_in(Client(**client_options), user)


def catalog(key, model):
    return model.objects.get(key=key, organization=None)


def populate(organization, *, people: int, days: int = 4) -> dict:
    """Groups, `people` accounts, a few switches, consents and `days` days of flows, through the services."""
    groups = {name: accounts.create_group(organization=organization, actor=SYSTEM, display_name=name)
              for name in ("Support", "Sales", "Engineering")}
    names = list(groups)
    created = accounts.create_accounts(organization=organization, actor=SYSTEM, accounts=[
        {"user_name": f"p{n}@{organization.slug}.example", "display_name": f"Person {n}",
         "groups": [groups[names[n % 3]]], "active": n % 10 != 9} for n in range(people)])
    governance.set_rule(organization=organization, actor=SYSTEM, scope="organization",
                        feature=catalog("meeting_summary", AIFeature), effect="allow", reason="pilot")
    governance.set_rule(organization=organization, actor=SYSTEM, scope="organization",
                        data_category=catalog("content.transcript", DataCategory),
                        purpose=catalog("ai.training.first_party", Purpose), effect="deny", locked=True,
                        reason="legal hold")
    governance.set_rule(organization=organization, actor=SYSTEM, scope="group", group=groups["Sales"],
                        feature=catalog("chat_compose", AIFeature), effect="allow", reason="sales pilot")
    governance.set_rule(organization=organization, actor=SYSTEM, scope="account", account=created[0],
                        feature=catalog("transcription", AIFeature), effect="allow", reason="captions")
    seed_activity(organization, days=days)
    settle(organization)
    return {"groups": groups, "accounts": created}


def settle(organization):
    """Do now what the commits queued for the workers (a test's transaction never commits)."""
    for batch_id in FlowBatch.objects.filter(organization=organization, status=FlowBatch.Status.RECEIVED) \
            .order_by("pk").values_list("pk", flat=True):
        process_batch(batch_id)
    drain_outbox(organization.pk)


APPEND_ONLY_TABLES = ("governance_consentevent", "audit_auditevent", "audit_auditdigest", "audit_merkletile",
                      "audit_telemetryflow")


@pytest.fixture
def append_only_rows_cleared(transactional_db):
    """Let a transactional test's flush empty the append-only tables.

    The flush after such a test DELETEs every row; on SQLite the append-only triggers refuse that
    (on PostgreSQL, tests/conftest.py lets the flush's TRUNCATE through). So empty those tables
    first with the triggers lifted for the moment, then put the triggers back.
    """
    yield
    if connection.vendor != "sqlite":
        return
    with connection.schema_editor() as editor:
        append_only.remove(editor, APPEND_ONLY_TABLES)
        editor.execute("DELETE FROM audit_flowaccount")  # before the flows its rows name
        for table in APPEND_ONLY_TABLES:
            editor.execute(f"DELETE FROM {table}")
        append_only.install(editor, APPEND_ONLY_TABLES)
