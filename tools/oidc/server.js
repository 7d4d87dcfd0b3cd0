// The province's identity provider as yiyun's tests meet it: oidc-provider issuing JWT access
// tokens by the client_credentials grant, signed with the keys of a JWKS file.
//
// Usage: node server.js --jwks KEYS.json --clients CLIENTS.json [--port 0] [--audience URI]
//                       [--ttl SECONDS]
// Each option may come from the environment instead: OIDC_JWKS, OIDC_CLIENTS, OIDC_PORT,
// OIDC_AUDIENCE, OIDC_TOKEN_TTL. Port 0 picks a free port. One line "READY <issuer>" on stdout
// says it is listening; SIGTERM or SIGINT stops it with exit code 0.
//
// KEYS.json is a private JWKS ({"keys": [...]}, each key with a kid); the first key signs, the
// others are published so tokens they signed still verify (key rotation).
// CLIENTS.json is a list of {"client_id", "client_secret", "claims"}: `claims` go into every
// access token issued to that client (e.g. yiyun_roles, preferred_username).

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

  // The issuer names the real port, so the socket is bound before the provider exists.
  const server = createServer();
  const port = await listen(server, options.port);
  const issuer = `http://${HOST}:${port}`;

  const provider = new Provider(issuer, {
    jwks,
    clients: registered.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    })),
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
    extraTokenClaims: async (_ctx, token) => claimsOf.get(token.clientId),
    formats: {
      customizers: {
        // oidc-provider leaves nbf out; relying parties (yiyun) check it when present.
        jwt: async (_ctx, _token, jwt) => {
          jwt.payload.nbf = jwt.payload.iat;
        },
      },
    },
    // Cookies are for interactive logins, which this peer does not offer; fixed keys keep
    // oidc-provider from warning about them on every start.
    cookies: { keys: ['yiyun-oidc-peer-not-a-secret'] },
  });
  provider.on('server_error', (_ctx, error) => console.error('server_error', error));
  server.on('request', provider.callback());

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
