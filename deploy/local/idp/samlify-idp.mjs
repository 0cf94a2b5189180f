// A second SAML 2.0 identity provider for the SSO tests: npm `samlify` (XML signatures by
// xml-crypto, not libxmlsec1 as in the pysaml2 IdP), so the SP is checked against two
// independent implementations. Loopback only; started by deploy/local/lib.sh
// (ensure_samlify_idp); never for production.
//
// Endpoints:
//   GET  /metadata        the IdP's metadata (entity id, HTTP-Redirect SSO URL, signing cert)
//   GET  /sso/redirect    parses the AuthnRequest (HTTP-Redirect binding), shows a login form;
//                         a request that is signed, or whose SP's metadata says its requests
//                         are (AuthnRequestsSigned), must verify with the SP's certificate
//                         from that metadata, else the answer is 400
//   GET  /post-only/metadata  the same IdP under another entity id, offering its SSO service
//                         only by HTTP-POST (as some IdPs do)
//   POST /sso/post        the HTTP-POST binding's AuthnRequest (form {SAMLRequest, RelayState},
//                         base64 XML), checked like the redirect one (an enveloped signature),
//                         then the same login form
//   POST /sso/login       form {SAMLRequest, RelayState, username, variant, binding}: an HTML
//                         form that posts the signed Response to the SP's ACS. The NameID is
//                         the address (emailAddress format); no attributes.
// Test hooks:
//   POST /__test/sp       body: an SP's metadata XML (each test tenant has its own SP)
// Variants (responses a real IdP must never send, with real xml-crypto signatures):
//   foreign_key  signed by a key the SP does not trust
//   tampered     signed, then the NameID changed to `victim`'s address
// and encrypted assertions (npm xml-encryption, to the encryption certificate in the SP's
// metadata; its KeyInfo in the default namespace), signed before they are encrypted:
//   encrypted      samlify's default algorithms, AES-256-CBC and RSA-OAEP-MGF1P
//   encrypted_gcm  AES-256-GCM

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import samlify from 'samlify';

const port = Number(process.env.SAMLIFY_IDP_PORT || 18094);
const base = `http://127.0.0.1:${port}`;
const state = process.env.SAMLIFY_IDP_STATE || '.';

// samlify insists on a schema validator; the SP under test is what validates here.
samlify.setSchemaValidator({ validate: () => Promise.resolve('skipped') });

const EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

function identityProvider(name, entityID = `${base}/metadata`, sso = { Binding: REDIRECT, Location: `${base}/sso/redirect` }) {
  return samlify.IdentityProvider({
    entityID,
    signingCert: readFileSync(`${state}/samlify-${name}.crt`, 'utf8'),
    privateKey: readFileSync(`${state}/samlify-${name}.key`, 'utf8'),
    wantAuthnRequestsSigned: false,
    nameIDFormat: [EMAIL],
    singleSignOnService: [sso],
  });
}

const idp = identityProvider('idp');
const foreign = identityProvider('foreign');
const postOnly = identityProvider('idp', `${base}/post-only/metadata`, { Binding: POST, Location: `${base}/sso/post` });
// The same IdPs, demanding signed AuthnRequests (samlify checks them only then).
const strict = samlify.IdentityProvider({
  ...idp.entitySetting,
  wantAuthnRequestsSigned: true,
});
const strictPostOnly = samlify.IdentityProvider({
  ...postOnly.entitySetting,
  wantAuthnRequestsSigned: true,
});
// The same IdP, encrypting its assertions.
const encrypting = Object.fromEntries(
  [
    ['encrypted', 'http://www.w3.org/2001/04/xmlenc#aes256-cbc'],
    ['encrypted_gcm', 'http://www.w3.org/2009/xmlenc11#aes256-gcm'],
  ].map(([variant, dataEncryptionAlgorithm]) => [
    variant,
    samlify.IdentityProvider({ ...idp.entitySetting, isAssertionEncrypted: true, dataEncryptionAlgorithm }),
  ]),
);
const serviceProviders = new Map();

function escape(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function formPage(action, fields, visible = '') {
  const hidden = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${escape(value)}">`)
    .join('');
  return `<!doctype html><html><body><form method="post" action="${escape(action)}">${hidden}${visible}<button>Continue</button></form></body></html>`;
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// The SP whose AuthnRequest this is (by its Issuer).
function serviceProviderOf(requestXml) {
  const issuer = /<(?:\w+:)?Issuer[^>]*>([^<]+)</.exec(requestXml);
  const sp = issuer && serviceProviders.get(issuer[1].trim());
  if (!sp) throw new Error('unknown SP: tell /__test/sp its metadata first');
  return sp;
}

async function login(form) {
  const query = { SAMLRequest: form.SAMLRequest, RelayState: form.RelayState || '' };
  const posted = form.binding === 'post';
  const requestXml = posted
    ? Buffer.from(form.SAMLRequest, 'base64').toString('utf8')
    : samlify.Utility.inflateString(form.SAMLRequest);
  const sp = serviceProviderOf(requestXml);
  let signer = posted ? postOnly : idp;
  if (form.variant === 'foreign_key') signer = foreign;
  if (encrypting[form.variant]) signer = encrypting[form.variant];
  const request = posted
    ? await postOnly.parseLoginRequest(sp, 'post', { body: query })
    : await signer.parseLoginRequest(sp, 'redirect', { query });
  const { context, entityEndpoint } = await signer.createLoginResponse(sp, request, 'post', {
    email: form.username,
  });
  let response = context;
  if (form.variant === 'tampered') {
    const xml = Buffer.from(context, 'base64').toString('utf8');
    response = Buffer.from(xml.split(form.username).join(form.victim), 'utf8').toString('base64');
  }
  const fields = { SAMLResponse: response };
  if (form.RelayState) fields.RelayState = form.RelayState;
  return formPage(entityEndpoint, fields);
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, base);
  const reply = (status, body, type = 'text/html; charset=utf-8') =>
    res.writeHead(status, { 'content-type': type }).end(body);
  try {
    if (req.method === 'GET' && url.pathname === '/metadata') {
      return reply(200, idp.getMetadata(), 'application/samlmetadata+xml');
    }
    if (req.method === 'GET' && url.pathname === '/sso/redirect') {
      const fields = {
        SAMLRequest: url.searchParams.get('SAMLRequest') || '',
        RelayState: url.searchParams.get('RelayState') || '',
      };
      const requestXml = samlify.Utility.inflateString(fields.SAMLRequest);
      const sp = serviceProviderOf(requestXml);
      if (url.searchParams.has('Signature') || sp.entityMeta.isAuthnRequestSigned()) {
        // The signed octets: the query's parameters as sent, in the binding's order.
        const raw = Object.fromEntries(
          url.search.slice(1).split('&').map((pair) => pair.split('=')),
        );
        const octetString = ['SAMLRequest', 'RelayState', 'SigAlg']
          .filter((name) => raw[name] !== undefined)
          .map((name) => `${name}=${raw[name]}`)
          .join('&');
        const query = Object.fromEntries(url.searchParams);
        await strict.parseLoginRequest(sp, 'redirect', { query, octetString });
      }
      return reply(200, formPage('/sso/login', fields, '<input name="username">'));
    }
    if (req.method === 'GET' && url.pathname === '/post-only/metadata') {
      return reply(200, postOnly.getMetadata(), 'application/samlmetadata+xml');
    }
    if (req.method === 'POST' && url.pathname === '/sso/post') {
      const posted = Object.fromEntries(new URLSearchParams(await readBody(req)));
      const fields = { SAMLRequest: posted.SAMLRequest || '', RelayState: posted.RelayState || '' };
      const sp = serviceProviderOf(Buffer.from(fields.SAMLRequest, 'base64').toString('utf8'));
      // Signed or said to be: the enveloped signature must verify with the SP's certificate.
      const checker = sp.entityMeta.isAuthnRequestSigned() ? strictPostOnly : postOnly;
      await checker.parseLoginRequest(sp, 'post', { body: fields });
      return reply(200, formPage('/sso/login', { ...fields, binding: 'post' }, '<input name="username">'));
    }
    if (req.method === 'POST' && url.pathname === '/__test/sp') {
      const metadata = await readBody(req);
      const sp = samlify.ServiceProvider({ metadata });
      serviceProviders.set(sp.entityMeta.getEntityID(), sp);
      return reply(204, '');
    }
    if (req.method === 'POST' && url.pathname === '/sso/login') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      return reply(200, await login(form));
    }
    return reply(404, 'not found', 'text/plain');
  } catch (error) {
    return reply(400, `error: ${escape(error && error.stack ? error.stack : error)}`, 'text/plain');
  }
});
server.listen(port, '127.0.0.1', () => {
  console.log(`samlify IdP listening on ${base}`);
});
