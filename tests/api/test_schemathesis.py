"""Property-based fuzzing of the API against its own OpenAPI schema: no 5xx, no answer off-schema.

Each operation is fuzzed on its own, then statefully: schemathesis infers links from the schema
(a POST's `id` feeds the GET, PATCH and DELETE of that object) and runs sequences of calls.

Every check runs, `negative_data_rejection` included: whatever the schema says is invalid
(a wrong type, an unknown key, a string or list past its limit, an empty query value) is refused.
`positive_data_acceptance`, which expects every schema-valid request to succeed, runs too, except
on the operations in NOT_ALL_VALID_DATA_IS_ACCEPTED: each says which rule OpenAPI cannot state.
Ids and catalog keys cannot be listed in a schema, so valid examples get ones that exist
(`with_real_references`), as a client would.
"""
import base64

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks

from governance.selectors import forget_compiled_policies

from ..conftest import token_client
from ..factories import AccountFactory, GroupFactory


from config.wsgi import application  # noqa: E402  (pytest-django has set Django up by now)

# The schema view needs no database; the calls below run inside each test's transaction.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

_REFERENCES = "names an account, a catalog entry or a terms version by key, and "
NOT_ALL_VALID_DATA_IS_ACCEPTED = {
    "GET /api/v1/accounts/{id}/effective-policy/": "`at` must not lie in the future: a bound relative to now.",
    "POST /api/v1/policy-rules/": _REFERENCES + "takes a feature *or* a category and purpose, a group or "
                                  "account as its scope requires: a schema cannot list the keys that exist, "
                                  "and OpenAPI 3.0 cannot tie one field to another's value.",
    "POST /api/v1/policy-rules/simulate/": "the body of a rule, as above.",
    "PATCH /api/v1/policy-rules/{id}/": "`expires_at` must lie in the future.",
    "POST /api/v1/consents/": _REFERENCES + "takes a feature *or* a category and purpose.",
    "POST /api/v1/decisions/": _REFERENCES + "takes an account *or* accounts; `at` must not lie in the future.",
    "POST /api/v1/flows/": "names accounts and catalog entries by key; `occurred_at` must not lie in the future.",
    "GET /api/v1/exposure/": "`since` must not be after `until`: a relation between two parameters.",
    "POST /api/v1/webhooks/": "the URL must resolve to a public address, which only a lookup can tell.",
    "PATCH /api/v1/webhooks/{id}/": "the URL, as above.",
    "PUT /api/v1/webhooks/{id}/": "the URL, as above.",
    "POST /api/v1/report-schedules/": "recipients must be in the organization's domains, and a cron schedule "
                                      "needs a cron expression that runs at most hourly.",
    "PATCH /api/v1/report-schedules/{id}/": "recipients and cron, as above.",
    "PUT /api/v1/report-schedules/{id}/": "recipients and cron, as above.",
    "POST /api/v1/reports/": "the period must end after it starts and by tomorrow.",
}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Calls go straight to the WSGI application, not through Django's test client, so the
    request signals would close the test's database connection mid-transaction (PostgreSQL)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def sales(org):
    return GroupFactory(organization=org, display_name="Sales")


@pytest.fixture
def token(org, sales):
    AccountFactory(organization=org, user_name="ada@acme.test")
    client = token_client(org)
    return client._credentials["HTTP_AUTHORIZATION"]


def with_real_references(case, sales):
    """A valid example, with the ids, keys and cursors it names replaced by ones that exist."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return  # an invalid example stays as generated
    if case.query and "cursor" in case.query:  # a cursor is one a page's next or previous link gave out
        case.query["cursor"] = base64.b64encode(b"p=1").decode()
    if isinstance(case.body, dict):
        if isinstance(case.body.get("groups"), list):
            case.body["groups"] = [sales.pk][:len(case.body["groups"])]
        if isinstance(case.body.get("covers"), list):
            case.body["covers"] = [{"data_category": "content.audio", "purpose": "ai.training.third_party"}][
                :len(case.body["covers"])]


def checks_left_out(case):
    return [checks.positive_data_acceptance] if case.operation.label in NOT_ALL_VALID_DATA_IS_ACCEPTED else []


@schema.parametrize()
# derandomized: CI runs the same examples as a developer did, so a pass is repeatable
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@pytest.mark.django_db
def test_the_api_keeps_to_its_schema_and_never_fails(case, token, sales):
    with_real_references(case, sales)
    # every example starts from the same database: what one created cannot make the next a conflict
    savepoint = transaction.savepoint()
    try:
        case.call_and_validate(headers={"Authorization": token}, excluded_checks=checks_left_out(case))
    finally:
        transaction.savepoint_rollback(savepoint)
        forget_compiled_policies()


APIWorkflows = schema.as_state_machine()


@pytest.mark.django_db
def test_api_workflows_keep_to_the_schema(token, sales):
    """Stateful: objects a call creates are fed to the calls that read, change and delete them."""
    class Workflows(APIWorkflows):
        def setup(self):
            # Every sequence starts from the same database, so hypothesis can replay and shrink it.
            self.savepoint = transaction.savepoint()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)
            forget_compiled_policies()  # built from rows that were just rolled back

        def get_call_kwargs(self, case):
            with_real_references(case, sales)
            return {"headers": {"Authorization": token}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, headers={"Authorization": token}, excluded_checks=checks_left_out(case))

    Workflows.run(settings=settings(max_examples=60, stateful_step_count=8, deadline=None,
                                    suppress_health_check=list(HealthCheck), derandomize=True, database=None))
