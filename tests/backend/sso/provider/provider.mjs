// A real OpenID provider (panva's certified oidc-provider) for Deskbell's SSO tests.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG: {"clients": [{"client_id", "redirect_uris"}], "accounts": {login: claims},
//          "id_token_ttl": seconds}
// Listens on a free loopback port, then prints one line "READY <issuer>" on stdout.
// The login form is the provider's development interaction: the password is not checked,
// the login name picks the account (an unknown login signs in with no email claim).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      client_id: client.client_id,
      // A native app (RFC 8252): a public client, PKCE, any loopback port.
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: client.redirect_uris,
    })),
    pkce: { required: () => true },
    // Deskbell reads the email from the ID token, as most providers send it there.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    ttl: { IdToken: config.id_token_ttl ?? 3600, AuthorizationCode: 60 },
    cookies: { keys: ['deskbell-test-cookie-key'] },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...(config.accounts[id] ?? {}) }),
    }),
  });
  // The login page and tokens name the issuer as configured; plain HTTP on loopback.
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
