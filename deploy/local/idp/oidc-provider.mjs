// A real OpenID provider for the SSO tests: npm `oidc-provider` (a certified implementation)
// on loopback, with its development login and consent pages (plain HTML forms), open dynamic
// client registration (each test registers its own client and redirect URI) and in-memory
// storage. Started by deploy/local/lib.sh (ensure_oidc_provider); never for production.
//
// Test hooks (loopback only, under /__test/):
//   POST /__test/accounts {login, email?, name?, groups?, email_verified?}
//       the claims the account `login` gets (default: email = login, verified, no groups).
//   POST /__test/tamper {client_id, claims?, foreign_key?, rotated_key?, kid?, hmac?}
//       the next token response for that client carries an ID token whose payload is
//       changed by `claims` (e.g. {"aud": "someone-else"}) and re-signed (RS256) with the
//       provider's key, or with another key under the same `kid` when `foreign_key` is true,
//       or with the key /__test/rotate published last when `rotated_key` is true; `kid` names another key id in the header; `hmac` signs it HS256 with the
//       client's secret instead (an algorithm-confusion attempt). This lets the tests prove
//       the relying party's checks against a real provider's flow.
//   GET /__test/token-auth?client_id=…
//       how that client last authenticated at the token endpoint: {"method":
//       "client_secret_basic"} (an Authorization header) or "client_secret_post" (the form
//       body), or "private_key_jwt" (a signed client assertion). oidc-provider, like most IdPs,
//       takes Basic or the body for a secret; this says which came.
//   POST /__test/rotate
//       makes a new RSA key and publishes it in /jwks from now on, as an IdP does before it
//       starts signing with it; answers {kid} ("rotated-1", "rotated-2", …).
//
// A GitHub-style emails endpoint (a resource the access token opens, as GitHub's
// /user/emails): GET /__github/user/emails with `Authorization: Bearer <access token>` answers
// [{email, primary, verified}, …]: the account's address (primary, verified), an unverified
// one listed first, and a verified secondary one.
//
// Signing keys: RSA "test-key" (RS256, PS256), EC P-256 "ec-key" (ES256) and Ed25519
// "ed-key" (EdDSA); a client picks one with `id_token_signed_response_alg` at registration,
// and its token endpoint authentication with `token_endpoint_auth_method`.

import { createServer } from 'node:http';

import Provider from 'oidc-provider';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';

const port = Number(process.env.OIDC_PORT || 18090);
const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;

const accounts = new Map();
const tampering = new Map();
const tokenAuth = new Map();

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const foreign = await generateKeyPair('RS256', { extractable: true });
const ec = await generateKeyPair('ES256', { extractable: true });
const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
const signingJwks = [
  { ...(await exportJWK(privateKey)), kid: 'test-key', use: 'sig' },
  { ...(await exportJWK(ec.privateKey)), kid: 'ec-key', alg: 'ES256', use: 'sig' },
  { ...(await exportJWK(ed.privateKey)), kid: 'ed-key', alg: 'EdDSA', use: 'sig' },
];
const rotatedJwks = [];
let rotated = null;

const configuration = {
  jwks: { keys: signingJwks },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    userinfo: { enabled: true },
    // Signed userinfo (`application/jwt`) for clients registered with
    // userinfo_signed_response_alg.
    jwtUserinfo: { enabled: true },
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  cookies: { keys: ['tenantry-test-idp-cookie-key'] },
  async findAccount(_ctx, id) {
    const account = accounts.get(id) || {};
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: account.email ?? id,
          email_verified: account.email_verified ?? true,
          name: account.name ?? `User ${id}`,
          groups: account.groups ?? [],
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/jwks' && ctx.body && Array.isArray(ctx.body.keys)) {
    ctx.body = { keys: [...ctx.body.keys, ...rotatedJwks] };
    return;
  }
  if (ctx.path === '/token' && ctx.oidc && ctx.oidc.client) {
    const basic = (ctx.headers.authorization || '').startsWith('Basic ');
    const post = ctx.oidc.params && ctx.oidc.params.client_secret !== undefined;
    const jwt = ctx.oidc.params && ctx.oidc.params.client_assertion !== undefined;
    const method = basic ? 'client_secret_basic' : post ? 'client_secret_post' : jwt ? 'private_key_jwt' : 'other';
    tokenAuth.set(ctx.oidc.client.clientId, method);
  }
  if (ctx.path !== '/token' || !ctx.body || typeof ctx.body !== 'object' || !ctx.body.id_token) {
    return;
  }
  const clientId = ctx.oidc && ctx.oidc.client && ctx.oidc.client.clientId;
  const tamper = clientId && tampering.get(clientId);
  if (!tamper) return;
  tampering.delete(clientId);
  const payload = { ...decodeJwt(ctx.body.id_token), ...(tamper.claims || {}) };
  let key = tamper.foreign_key ? foreign.privateKey : privateKey;
  let header = { alg: 'RS256', kid: tamper.kid || 'test-key', typ: 'JWT' };
  if (tamper.rotated_key) {
    key = rotated.privateKey;
    header = { ...header, kid: tamper.kid || rotated.kid };
  }
  if (tamper.hmac) {
    key = new TextEncoder().encode(ctx.oidc.client.clientSecret);
    header = { alg: 'HS256', typ: 'JWT' };
  }
  ctx.body = {
    ...ctx.body,
    id_token: await new SignJWT(payload).setProtectedHeader(header).sign(key),
  };
});

async function githubEmails(req, res) {
  const token = (req.headers.authorization || '').replace(/^Bearer /, '');
  const accessToken = token && (await provider.AccessToken.find(token));
  if (!accessToken) {
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"Bad credentials"}');
    return;
  }
  const login = accessToken.accountId;
  const account = accounts.get(login) || {};
  const primary = account.email ?? login;
  const emails = [
    { email: `unverified-${primary}`, primary: false, verified: false },
    { email: primary, primary: true, verified: true },
    { email: `secondary-${primary}`, primary: false, verified: true },
  ];
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(emails));
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/__github/user/emails') {
      await githubEmails(req, res);
      return;
    }
    if (req.method === 'POST' && req.url === '/__test/accounts') {
      const body = await readJson(req);
      accounts.set(String(body.login), body);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url.startsWith('/__test/token-auth?')) {
      const clientId = new URL(req.url, issuer).searchParams.get('client_id');
      const method = tokenAuth.get(clientId) || null;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method }));
      return;
    }
    if (req.method === 'POST' && req.url === '/__test/rotate') {
      const pair = await generateKeyPair('RS256', { extractable: true });
      const kid = `rotated-${rotatedJwks.length + 1}`;
      rotatedJwks.push({ ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' });
      rotated = { privateKey: pair.privateKey, kid };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kid }));
      return;
    }
    if (req.method === 'POST' && req.url === '/__test/tamper') {
      const body = await readJson(req);
      tampering.set(String(body.client_id), body);
      res.writeHead(204).end();
      return;
    }
  } catch (error) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
