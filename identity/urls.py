from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("organization/", views.switch_organization, name="switch-organization"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sign-in/code/", views.mfa, name="mfa"),
    path("sign-in/sso-required/", views.sso_required, name="sso-required"),
    path("sso/<slug:slug>/saml/login/", views.saml_login, name="saml-login"),
    path("sso/<slug:slug>/saml/acs/", views.saml_acs, name="saml-acs"),
    path("sso/<slug:slug>/saml/metadata/", views.saml_metadata, name="saml-metadata"),
]
