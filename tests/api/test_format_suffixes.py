"""One URL per resource: a format suffix is not another way in (handlers never expected one)."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/accounts.json", "/api/v1/accounts/{account}.json",
                                  "/api/v1/accounts/{account}/effective-policy.json",
                                  "/api/v1/accounts/{account}/effective-policy.api",
                                  "/api/v1/audit-events/verify.json", "/api/v1/groups.api"])
def test_a_format_suffix_is_not_found_rather_than_a_server_error(api, people, path):
    response = api.get(path.format(account=people[0].pk))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_a_format_suffix_on_a_what_if_is_not_found(api, org):
    response = api.post("/api/v1/policy-rules/simulate.json", {}, format="json")
    assert response.status_code == 404
