"""Property-based fuzzing of the API against its own OpenAPI schema: no 5xx, no answer off-schema.

Each operation is fuzzed on its own, then statefully: schemathesis infers links from the schema
(a POST's `id` feeds the GET, PATCH and DELETE of that object) and runs sequences of calls.

Two of schemathesis's checks are left out on purpose. `positive_data_acceptance` expects every
schema-valid request to succeed, but business rules (a group of another organization, a
feature *or* a pair) cannot be written in OpenAPI; `negative_data_rejection` expects lenient
coercions DRF makes (an integer sent for a string field) to be refused. Every response is still
checked: status codes, content types, headers and bodies against the schema, and no 5xx.
"""
import pytest
import schemathesis
from django.db import transaction
from schemathesis.specs.openapi import checks
from hypothesis import HealthCheck, settings

from governance.selectors import forget_compiled_policies

from ..conftest import token_client
from ..factories import AccountFactory, GroupFactory


from config.wsgi import application  # noqa: E402  (pytest-django has set Django up by now)

# The schema view needs no database; the calls below run inside each test's transaction.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


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
def token(org):
    GroupFactory(organization=org, display_name="Sales")
    AccountFactory(organization=org, user_name="ada@acme.test")
    client = token_client(org)
    return client._credentials["HTTP_AUTHORIZATION"]


@schema.parametrize()
# derandomized: CI runs the same examples as a developer did, so a pass is repeatable
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@pytest.mark.django_db
def test_the_api_keeps_to_its_schema_and_never_fails(case, token):
    case.call_and_validate(headers={"Authorization": token},
                           excluded_checks=[checks.positive_data_acceptance, checks.negative_data_rejection])


APIWorkflows = schema.as_state_machine()


@pytest.mark.django_db
def test_api_workflows_keep_to_the_schema(token):
    """Stateful: objects a call creates are fed to the calls that read, change and delete them."""
    class Workflows(APIWorkflows):
        def setup(self):
            # Every sequence starts from the same database, so hypothesis can replay and shrink it.
            self.savepoint = transaction.savepoint()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)
            forget_compiled_policies()  # built from rows that were just rolled back

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": token}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, headers={"Authorization": token}, excluded_checks=[
                checks.positive_data_acceptance, checks.negative_data_rejection])

    Workflows.run(settings=settings(max_examples=60, stateful_step_count=8, deadline=None,
                                    suppress_health_check=list(HealthCheck), derandomize=True, database=None))
