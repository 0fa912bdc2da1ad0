from django.urls import path

from . import sso, views

app_name = "console"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("policy/", views.policy, name="policy"),
    path("policy/change/", views.policy_change, name="policy-change"),
    path("policy/rules/<int:rule_id>/remove/", views.policy_remove, name="policy-remove"),
    path("accounts/", views.accounts, name="accounts"),
    path("accounts/<int:account_id>/", views.account_detail, name="account"),
    path("terms/", views.terms, name="terms"),
    path("audit/", views.audit, name="audit"),
    path("audit/events/<int:seq>/proof/", views.audit_proof, name="audit-proof"),
    path("flows/", views.flows, name="flows"),
    path("flows/<int:flow_pk>/proof/", views.flow_proof, name="flow-proof"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("settings/", views.organization_settings, name="settings"),
    path("settings/single-sign-on/", sso.single_sign_on, name="sso"),
    path("people/", views.people, name="people"),
    path("people/<int:user_id>/role/", views.person_role, name="person-role"),
    path("people/<int:user_id>/remove/", views.person_remove, name="person-remove"),
    path("people/<int:user_id>/code-reset/", views.person_mfa_reset, name="person-mfa-reset"),
    path("invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation-revoke"),
]
