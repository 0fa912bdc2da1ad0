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
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/done/", views.PasswordResetDoneView.as_view(), name="password-reset-done"),
    path("password-reset/complete/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password-reset-confirm"),
]
