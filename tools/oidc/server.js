// The province's identity provider as yiyun's tests meet it: oidc-provider issuing JWT access
// tokens by the client_credentials grant, and ID tokens by the authorization code flow (PKCE
// S256) after a login against an accounts file; all signed with the keys of a JWKS file.
//
// Usage: node server.js --jwks KEYS.json --clients CLIENTS.json [--accounts ACCOUNTS.json]
//                       [--port 0] [--audience URI] [--ttl SECONDS]
// Each option may come from the environment instead: OIDC_JWKS, OIDC_CLIENTS, OIDC_ACCOUNTS,
// OIDC_PORT, OIDC_AUDIENCE, OIDC_TOKEN_TTL. Port 0 picks a free port. One line "READY <issuer>"
// on stdout says it is listening; SIGTERM or SIGINT stops it with exit code 0.
//
// KEYS.json is a private JWKS ({"keys": [...]}, each key with a kid); the first key signs, the
// others are published so tokens they signed still verify (key rotation).
// CLIENTS.json is a list of {"client_id", "client_secret", "claims"}: `claims` go into every
// access token issued to that client (e.g. yiyun_roles, preferred_username). A client with
// `redirect_uris` logs users in by the authorization code flow instead (see interactiveClient).
// ACCOUNTS.json is a list of {"sub", "password", "claims"}: the users who can log in; their
// claims go into ID tokens (scopes `profile` and `yiyun`) and into their access tokens.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';

function settings() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
      jwks: { type: 'string', default: process.env.OIDC_JWKS },
      clients: { type: 'string', default: process.env.OIDC_CLIENTS },
      accounts: { type: 'string', default: process.env.OIDC_ACCOUNTS },
      audience: { type: 'string', default: process.env.OIDC_AUDIENCE ?? 'urn:yiyun:api' },
      ttl: { type: 'string', default: process.env.OIDC_TOKEN_TTL ?? '300' },
    },
  });
  if (!values.jwks || !values.clients) {
    throw new Error('both --jwks (OIDC_JWKS) and --clients (OIDC_CLIENTS) are required');
  }
  const port = Number(values.port);
  const ttl = Number(values.ttl);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer 0..65535, not ${values.port}`);
  }
  if (!Number.isInteger(ttl) || ttl <= 0) {
    throw new Error(`--ttl must be a positive integer, not ${values.ttl}`);
  }
  return { ...values, port, ttl };
}

// The signing algorithm follows the first key, so an EC key set signs ES256 without a flag.
function signingAlg(jwk) {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC') return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[jwk.crv];
  throw new Error(`no signing algorithm for key ${jwk.kid} (kty ${jwk.kty})`);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

// Which claims each scope releases; conformIdTokenClaims: false puts them in the ID token of
// the code flow too, where the portal reads them (not only at the userinfo endpoint).
const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['preferred_username', 'name'],
  yiyun: ['yiyun_roles'],
};

// Client metadata a CLIENTS.json entry may set for the code flow; the rest are yiyun's own.
const INTERACTIVE_METADATA = [
  'application_type',
  'grant_types',
  'post_logout_redirect_uris',
  'redirect_uris',
  'response_types',
  'token_endpoint_auth_method',
];

// Entries without redirect_uris stay what they always were: robots with client_credentials.
// A native client (application_type "native") with a loopback http redirect URI may come back
// on any port (RFC 8252 §7.3), which is how tests meet a service that picked a free port.
function providerClient(client) {
  const base = { client_id: client.client_id, client_secret: client.client_secret };
  if (!client.redirect_uris?.length) {
    return { ...base, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
  }
  const metadata = Object.fromEntries(
    INTERACTIVE_METADATA.filter((key) => key in client).map((key) => [key, client[key]]),
  );
  return {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    ...metadata,
    ...base,
  };
}

function readAccounts(path) {
  if (!path) return new Map();
  const listed = readJson(path);
  if (!Array.isArray(listed)) throw new Error(`${path}: not a list of accounts`);
  const accounts = new Map();
  for (const account of listed) {
    if (typeof account.sub !== 'string' || typeof account.password !== 'string') {
      throw new Error(`${path}: every account needs a string sub and password`);
    }
    accounts.set(account.sub, { password: account.password, claims: account.claims ?? {} });
  }
  return accounts;
}

// Hashing first gives equal lengths, which timingSafeEqual needs; a test peer still should not
// teach the portal's authors that a string compare of passwords is fine.
function samePassword(given, expected) {
  const digest = (text) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The login page: plain HTML, no script, fields and button a Playwright test finds by label.
function loginPage(uid, { username = '', error = '' } = {}) {
  const alert = error ? `<p role="alert" class="error">${escapeHtml(error)}</p>` : '';
  return `<!DOCTYPE html>
<html lang="zh">
<head><meta charset="utf-8"><title>登录 · 省统一身份认证</title></head>
<body>
<main>
<h1>省统一身份认证</h1>
${alert}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<p><label for="username">用户名</label>
<input id="username" name="username" autocomplete="username" value="${escapeHtml(username)}"></p>
<p><label for="password">密码</label>
<input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button type="submit">登录</button></p>
</form>
</main>
</body>
</html>
`;
}

function sendHtml(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw Object.assign(new Error('form too large'), { statusCode: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Every registered client is the province's own (first party), so consent is given for
// exactly what was asked, without a consent screen.
async function grantAsked(provider, details) {
  const { prompt, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

// GET /interaction/:uid shows the login form (or consents at once); POST …/login checks the
// password. Anything else is the provider's.
async function interaction(provider, accounts, req, res) {
  const { pathname } = new URL(req.url, 'http://peer');
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(pathname);
  if (!match) return false;
  const [, uid, login] = match;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    throw Object.assign(new Error('interaction does not match its cookie'), { statusCode: 400 });
  }
  const { name } = details.prompt;
  if (req.method === 'GET' && !login && name === 'login') {
    sendHtml(res, 200, loginPage(uid));
  } else if (req.method === 'GET' && !login && name === 'consent') {
    const grantId = await grantAsked(provider, details);
    await provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
  } else if (req.method === 'POST' && login && name === 'login') {
    const form = await readForm(req);
    const username = form.get('username') ?? '';
    const account = accounts.get(username);
    if (!account || !samePassword(form.get('password') ?? '', account.password)) {
      sendHtml(res, 401, loginPage(uid, { username, error: '用户名或密码错误' }));
    } else {
      await provider.interactionFinished(req, res, { login: { accountId: username } }, {
        mergeWithLastSubmission: false,
      });
    }
  } else {
    throw Object.assign(new Error(`no ${req.method} for prompt ${name}`), { statusCode: 405 });
  }
  return true;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => resolve(server.address().port));
  });
}

async function main() {
  const options = settings();
  const jwks = readJson(options.jwks);
  const registered = readJson(options.clients);
  if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new Error(`${options.jwks}: no keys`);
  }
  const missingKid = jwks.keys.find((jwk) => typeof jwk.kid !== 'string');
  if (missingKid) throw new Error(`${options.jwks}: every key needs a kid`);
  const alg = signingAlg(jwks.keys[0]);
  const claimsOf = new Map(registered.map((client) => [client.client_id, client.claims ?? {}]));
  const accounts = readAccounts(options.accounts);

  // The issuer names the real port, so the socket is bound before the provider exists.
  const server = createServer();
  const port = await listen(server, options.port);
  const issuer = `http://${HOST}:${port}`;

  const provider = new Provider(issuer, {
    jwks,
    clients: registered.map(providerClient),
    claims: SCOPE_CLAIMS,
    conformIdTokenClaims: false,
    findAccount: async (_ctx, sub) => {
      const account = accounts.get(sub);
      if (!account) return undefined;
      // The provider keeps only the claims the granted scopes release.
      return { accountId: sub, claims: async () => ({ ...account.claims, sub }) };
    },
    // oidc-provider asks PKCE only of public clients by default; the province asks it of all.
    pkce: { required: () => true },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => options.audience,
        getResourceServerInfo: async (_ctx, resourceIndicator) => ({
          audience: resourceIndicator,
          scope: '',
          accessTokenFormat: 'jwt',
          accessTokenTTL: options.ttl,
          jwt: { sign: { alg } },
        }),
      },
    },
    // A user's access token (code flow) carries the user's claims, a robot's its client's.
    extraTokenClaims: async (_ctx, token) =>
      token.accountId ? accounts.get(token.accountId)?.claims : claimsOf.get(token.clientId),
    formats: {
      customizers: {
        // oidc-provider leaves nbf out; relying parties (yiyun) check it when present.
        jwt: async (_ctx, _token, jwt) => {
          jwt.payload.nbf = jwt.payload.iat;
        },
      },
    },
    // Cookies carry the login interaction and the session; fixed keys keep oidc-provider from
    // warning about them on every start (state is in memory and dies with the process anyway).
    cookies: { keys: ['yiyun-oidc-peer-not-a-secret'] },
  });
  provider.on('server_error', (_ctx, error) => console.error('server_error', error));
  const delegate = provider.callback();
  server.on('request', (req, res) => {
    interaction(provider, accounts, req, res)
      .then((handled) => handled || delegate(req, res))
      .catch((error) => {
        // SessionNotFound and friends carry a status; a missing interaction cookie is a 400.
        const status = error.statusCode ?? error.status ?? 500;
        if (status >= 500) console.error('interaction', error);
        if (!res.headersSent) {
          res.statusCode = status;
          res.setHeader('Content-Type', 'text/plain; charset=utf-8');
          res.end(`${error.error ?? 'error'}: ${error.error_description ?? error.message}\n`);
        }
      });
  });

  const stop = () => {
    server.close(() => process.exit(0));
    // Keep-alive connections from a test's HTTP client would otherwise hold close() open.
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  console.log(`READY ${issuer}`);
}

main().catch((error) => {
  console.error(`oidc peer: ${error.message}`);
  process.exit(1);
});
