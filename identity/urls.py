from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("organization/", views.switch_organization, name="switch-organization"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sign-in/code/", views.mfa, name="mfa"),
    path("sign-in/sso-required/", views.sso_required, name="sso-required"),
    # Single sign-on: the sign-in page's e-mail form, then per organization its start and the
    # redirect URI to register at its IdP (https://<console host>/sso/<slug>/callback/).
    path("sso/", views.sso_find, name="sso-find"),
    path("sso/<slug:slug>/", views.sso_start, name="sso-start"),
    path("sso/<slug:slug>/callback/", views.sso_callback, name="sso-callback"),
]
