from django.contrib.auth import views as auth_views
from django.urls import path

from . import sso_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("organization/", views.switch_organization, name="switch-organization"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sign-in/code/", views.mfa, name="mfa"),
    path("sign-in/sso-required/", views.sso_required, name="sso-required"),
    # Single sign-on: the sign-in page's e-mail form, then per organization its start URL and what
    # to register at its IdP: the OIDC redirect URI, or the SAML ACS URL and SP metadata (entity id).
    path("sso/", sso_views.sso_find, name="sso-find"),
    path("sso/<slug:slug>/", sso_views.sso_start, name="sso-start"),
    path("sso/<slug:slug>/callback/", sso_views.sso_callback, name="sso-callback"),
    path("sso/<slug:slug>/saml/acs/", sso_views.saml_acs, name="saml-acs"),
    path("sso/<slug:slug>/saml/metadata/", sso_views.saml_metadata, name="saml-metadata"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/done/", views.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path("password-reset/complete/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password-reset-confirm"),
]
