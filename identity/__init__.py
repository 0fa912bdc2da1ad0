"""How console users get in: single sign-on through an organization's own IdP (OIDC or SAML), with
roles from its groups; invitations, passwords and TOTP for organizations without SSO; and which
organization a signed-in session may act in. It sits above accounts (whose `OrgRole` it grants)
and audit (every sign-in, refusal and change is an event); the console's pages and the API's
session authentication ask it who is looking."""
