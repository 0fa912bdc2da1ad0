"""SCIM 2.0 provisioning (RFC 7643/7644) of an organization's accounts and groups, at /scim/v2/.

Identity providers (Okta, Microsoft Entra ID) call it with a `scim`-scoped token of one
organization. Every write goes through the services of the app that owns the data (accounts,
and governance for the AI-governance extension), so it is audited with the IdP as the actor and
bumps the policy version when memberships change. Nothing imports this app but config/urls.py.
"""
