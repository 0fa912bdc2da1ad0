// A real OpenID Provider for the console's SSO tests (panva/oidc-provider, OpenID Certified).
// Never deployed: it signs in anyone by name through its built-in development login form.
//
//   PORT=9400 CLIENT_ID=console CLIENT_SECRET=s REDIRECT_URI=http://testserver/sso/acme/callback/ \
//   ACCOUNTS_FILE=people.json JWKS_FILE=keys.json node tools/test-idp/oidc.mjs
//
// ACCOUNTS_FILE maps a login name to its claims, {"ada": {"email": "...", "groups": ["..."]}}, and is
// read at every sign-in, so a test changes a person's groups between sign-ins by rewriting it.
// JWKS_FILE holds private JWKs; the first key signs ID tokens and all are published. A key
// rotation is a restart on the same port with the new key first.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const env = (name) => {
  if (!process.env[name]) throw new Error(`${name} is required`);
  return process.env[name];
};
const port = Number(env('PORT'));
const accountsFile = env('ACCOUNTS_FILE');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: env('REDIRECT_URI').split(' '),
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  jwks: JSON.parse(readFileSync(env('JWKS_FILE'), 'utf8')),
  async findAccount(ctx, sub) {
    const person = JSON.parse(readFileSync(accountsFile, 'utf8'))[sub];
    if (!person) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: person.email, email_verified: true, groups: person.groups };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  scopes: ['openid', 'email', 'groups'],
  conformIdTokenClaims: false, // the requested claims go into the ID token, as the console reads them there
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['test-idp-only'] },
});
provider.listen(port, '127.0.0.1', () => console.log(`test IdP on http://127.0.0.1:${port}`));
