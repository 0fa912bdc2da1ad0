from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("organization/", views.switch_organization, name="switch-organization"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sign-in/code/", views.mfa, name="mfa"),
    path("sign-in/sso-required/", views.sso_required, name="sso-required"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
