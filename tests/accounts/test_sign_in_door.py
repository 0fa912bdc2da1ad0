"""One sign-in door: Django's admin site has no password form of its own, only a way to the console's,
so every guess meets the same throttle, and the admin site still opens for platform staff alone."""
import pytest
from django.test import Client

from identity import throttle

from ..factories import OrgRoleFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # UserFactory's
# Each test's failures count for a login of its own (a new user) from an address of its own.


@pytest.fixture
def org_admin(org):
    return OrgRoleFactory(organization=org, role="admin").user


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_admin_sign_in_page_sends_people_to_the_console_sign_in_with_where_they_were_going():
    response = Client().get("/admin/login/?next=/admin/accounts/account/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/accounts/account/"
    assert Client().get("/admin/login/")["Location"] == "/login/?next=/admin/"
    # and the admin's pages lead there too
    assert Client().get("/admin/", follow=True).redirect_chain[-1] == ("/login/?next=/admin/", 302)


def test_a_right_password_posted_to_the_admin_sign_in_only_signs_in_through_the_console_door(org_admin):
    client = Client()
    response = client.post("/admin/login/", {"username": org_admin.username, "password": PASSWORD})
    assert response.status_code == 307 and response["Location"] == "/login/?next=/admin/"
    assert not signed_in(client)  # nothing was checked here
    followed = client.post("/admin/login/", {"username": org_admin.username, "password": PASSWORD}, follow=True)
    assert followed.redirect_chain[0] == ("/login/?next=/admin/", 307) and signed_in(client)


def test_hammering_the_admin_sign_in_hits_the_same_lockout_as_the_console_sign_in(org_admin):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(throttle.FAILURE_LIMIT):
        failed = client.post("/admin/login/", {"username": org_admin.username, "password": "wrong"}, follow=True)
        assert b"Please enter a correct" in failed.content
    assert throttle.is_locked(org_admin.username, "203.0.113.7")
    # the right password is now refused at both addresses of the door
    for path in ("/admin/login/", "/login/"):
        locked = client.post(path, {"username": org_admin.username, "password": PASSWORD}, follow=True)
        assert b"Too many failed sign-in attempts" in locked.content, path
        assert not signed_in(client), path


def test_failures_at_the_console_sign_in_lock_the_admin_sign_in_too(org_admin):
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(throttle.FAILURE_LIMIT):
        client.post("/login/", {"username": org_admin.username, "password": "wrong"})
    locked = client.post("/admin/login/", {"username": org_admin.username, "password": PASSWORD}, follow=True)
    assert b"Too many failed sign-in attempts" in locked.content and not signed_in(client)


def test_the_admin_site_stays_for_staff_only(org_admin):
    organization_admin = Client()
    organization_admin.force_login(org_admin)
    response = organization_admin.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert organization_admin.get("/admin/login/")["Location"] == "/login/?next=/admin/"

    staff = Client()
    staff.post("/login/", {"username": UserFactory(is_staff=True, is_superuser=True).username, "password": PASSWORD})
    assert staff.get("/admin/").status_code == 200
    assert staff.get("/admin/login/")["Location"] == "/admin/"  # already in: on to the index
