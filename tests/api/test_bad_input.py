"""Bad input, from outside: a 4xx problem+json naming what is wrong, nothing written, never a 500.

Each class of input here once answered a 500, tied up a worker or was silently stored as something
else than what was sent. The checks live in one place (config/api.py, config/filters.py,
config/middleware.py), so every serializer and list of every app gets them: these tests go
through several endpoints to show it.
"""
import pytest

from accounts.models import Account, AccountGroup, Group
from audit.models import OutboxEntry
from governance.models import PolicyRule, TermsVersion

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db


def refused(response, *fields, status=400):
    """The response is a problem+json of `status` naming exactly `fields`; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    if fields:
        assert {error["field"] for error in body["errors"]} == set(fields), body
    return body


@pytest.fixture
def account(org):
    return AccountFactory(organization=org)


@pytest.fixture
def nothing_written(org):
    """Whatever a test sends, no row and no audit event comes of it."""
    counts = lambda: (Account.objects.count(), Group.objects.count(), AccountGroup.objects.count(),  # noqa: E731
                      PolicyRule.objects.count(), TermsVersion.objects.count(), OutboxEntry.objects.count())
    before = counts()
    yield
    assert counts() == before


class TestBodies:
    def test_a_body_past_djangos_form_limit_but_within_the_apis_gets_a_problem_not_html(self, api, nothing_written):
        body = b'{"display_name": "' + b"x" * (3 * 2**20) + b'"}'  # 3 MB: past Django's 2.5 MB, under 16 MB
        refused(api.post("/api/v1/groups/", body, content_type="application/json"), "display_name")

    def test_a_flow_batch_of_several_megabytes_is_read(self, api, org):
        body = b'{"flows": [' + b",".join([b'{"flow_id": "' + b"f" * 190 + b'%d"}' % n for n in range(15_000)]) + b"]}"
        assert len(body) > 2.5 * 2**20
        refused(api.post("/api/v1/flows/", body, content_type="application/json"), "flows")

    def test_a_body_past_the_api_limit_gets_413(self, api, settings, nothing_written):
        settings.API_MAX_BODY_BYTES = 1000
        refused(api.post("/api/v1/groups/", {"display_name": "x" * 2000}, format="json"), status=413)

    def test_a_chunked_body_without_a_length_gets_411_not_an_empty_request(self, api, nothing_written):
        refused(api.generic("POST", "/api/v1/groups/", b"", content_type="application/json",
                            HTTP_TRANSFER_ENCODING="chunked"), status=411)


class TestProblemTitles:
    def test_415_and_405_name_the_media_type_and_method(self, api, account, nothing_written):
        unsupported = refused(api.post("/api/v1/groups/", "x", content_type="text/plain"), status=415)
        not_allowed = refused(api.delete(f"/api/v1/accounts/{account.pk}/"), status=405)
        assert "{" not in unsupported["title"] and "text/plain" in unsupported["detail"]
        assert "{" not in not_allowed["title"] and "DELETE" in not_allowed["detail"]
