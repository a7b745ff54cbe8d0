// A real OpenID provider for the OIDC login tests (the npm package oidc-provider), on 127.0.0.1.
// Its login form is the package's development one: any password, the login is the account id.
// Usage: PORT=… REDIRECT_URIS=uri[,uri] node provider.mjs   (prints "ready <issuer>" when up)
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

// E-mail and group claims, as Keycloak or an LDAP-backed provider would send them.
const ACCOUNTS = {
  alice: { email: 'alice@example.com', email_verified: true, groups: ['sms-admins', 'staff'] },
  oscar: { email: 'oscar@example.com', email_verified: true, groups: ['sms-operators'] },
  nina: { email: 'nina@example.com', email_verified: true, groups: ['staff'] },
  eve: { email: 'eve@elsewhere.org', email_verified: true, groups: ['sms-admins'] },
  una: { email: 'una@example.com', email_verified: false, groups: ['sms-admins'] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'sms-sender',
      client_secret: 'sms-sender-test-secret',
      redirect_uris: process.env.REDIRECT_URIS.split(','),
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  pkce: { required: () => true },
  cookies: { keys: ['tests-only-not-a-secret'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
});

const server = provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
