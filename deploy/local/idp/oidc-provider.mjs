// A real OpenID provider for the SSO tests: npm `oidc-provider` (a certified implementation)
// on loopback, with its development login and consent pages (plain HTML forms), open dynamic
// client registration (each test registers its own client and redirect URI) and in-memory
// storage. Started by deploy/local/lib.sh (ensure_oidc_provider); never for production.
//
// Test hooks (loopback only, under /__test/):
//   POST /__test/accounts {login, email?, name?, groups?, email_verified?}
//       the claims the account `login` gets (default: email = login, verified, no groups).
//   POST /__test/tamper {client_id, claims?, foreign_key?}
//       the next token response for that client carries an ID token whose payload is
//       changed by `claims` (e.g. {"aud": "someone-else"}) and re-signed with the provider's
//       key, or with another key under the same `kid` when `foreign_key` is true. This lets the
//       tests prove the relying party's checks against a real provider's flow.

import { createServer } from 'node:http';

import Provider from 'oidc-provider';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';

const port = Number(process.env.OIDC_PORT || 18090);
const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;

const accounts = new Map();
const tampering = new Map();

const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
const foreign = await generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
void publicKey;

const configuration = {
  jwks: { keys: [signingJwk] },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    userinfo: { enabled: true },
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
  if (ctx.path !== '/token' || !ctx.body || typeof ctx.body !== 'object' || !ctx.body.id_token) {
    return;
  }
  const clientId = ctx.oidc && ctx.oidc.client && ctx.oidc.client.clientId;
  const tamper = clientId && tampering.get(clientId);
  if (!tamper) return;
  tampering.delete(clientId);
  const payload = { ...decodeJwt(ctx.body.id_token), ...(tamper.claims || {}) };
  const key = tamper.foreign_key ? foreign.privateKey : privateKey;
  ctx.body = {
    ...ctx.body,
    id_token: await new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key', typ: 'JWT' })
      .sign(key),
  };
});

const callback = provider.callback();
const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/__test/accounts') {
      const body = await readJson(req);
      accounts.set(String(body.login), body);
      res.writeHead(204).end();
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
