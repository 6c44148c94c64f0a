import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { z } from 'zod';
import { StartupError } from './errors.js';
import { classificationConfigSchema, policiesConfigSchema } from './policy/policy-config.js';

/** A role name: lower-case identifier. */
export const roleNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'role names are lower-case identifiers');
/** A scope: `<connector>:<permission>`, e.g. `postgres:read`. */
export const scopeSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_.-]{0,63}$/, 'scopes look like connector:permission');
/** A tool name: `<connector>_<verb>_<noun>`. */
export const toolNameSchema = z.string().regex(/^[a-z][a-z0-9]*(_[a-z0-9]+)+$/, 'not a tool name');

/** True for `localhost`, `127.0.0.0/8` and `[::1]`. */
function isLoopbackHostname(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * An AWS Secrets Manager secret (`GetSecretValue`), fetched at startup, cached for `ttlSeconds`
 * and fetched again after an upstream authentication failure (rotation). AWS credentials and,
 * unless `region` is set, the region come from the AWS SDK's default chain (environment,
 * shared config files, container or instance role).
 */
export const secretsManagerSourceSchema = z.strictObject({
  /** The secret's name or ARN. */
  secretId: z
    .string()
    .min(1)
    .max(2048)
    .regex(/^[A-Za-z0-9/_+=.@:-]+$/, 'not a secret name or ARN'),
  /** The SecretString is a JSON object and the credential is this string field of it. */
  jsonKey: z.string().min(1).max(256).optional(),
  /** The staging label to read. */
  versionStage: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z0-9_+=.@-]+$/, 'not a staging label')
    .default('AWSCURRENT'),
  /** AWS region, e.g. `eu-west-1`. Default: the SDK's (`AWS_REGION`, the shared config file). */
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, 'not an AWS region')
    .optional(),
  /**
   * Endpoint override (a VPC endpoint, a local test double). `https://` only, except on a
   * loopback host: the response carries the secret.
   */
  endpoint: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .refine((u) => {
      const url = new URL(u);
      return url.protocol === 'https:' || isLoopbackHostname(url.hostname);
    }, 'the endpoint must use https:// (plain http only on a loopback host)')
    .optional(),
  /** How long a fetched value is used before it is fetched again, in seconds. */
  ttlSeconds: z.int().min(1).max(86_400).default(300),
});
/** See {@link secretsManagerSourceSchema}. */
export type SecretsManagerSource = z.infer<typeof secretsManagerSourceSchema>;
/** {@link SecretsManagerSource} before defaults are applied. */
export type SecretsManagerSourceInput = z.input<typeof secretsManagerSourceSchema>;

/**
 * Where a credential comes from: an environment variable, a file (e.g. a container secret
 * at `/run/secrets/...`) or an AWS Secrets Manager secret. The value is never part of the
 * configuration itself.
 */
export const credentialSourceSchema = z.union([
  z.strictObject({
    env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'not an environment variable name'),
  }),
  z.strictObject({ file: z.string().min(1).max(4096) }),
  z.strictObject({ secretsManager: secretsManagerSourceSchema }),
]);
/** See {@link credentialSourceSchema}. */
export type CredentialSource = z.infer<typeof credentialSourceSchema>;
/** A credential source before defaults are applied (what a caller may pass to `loadCredentials`). */
export type CredentialSourceInput = z.input<typeof credentialSourceSchema>;

/**
 * `principalCredentials.tokenExchange`: where and how the caller's access token is exchanged
 * (RFC 8693) for a downstream token. The client authenticates to the token endpoint with
 * `client_secret_basic` (RFC 6749 §2.3.1) using `clientSecret` from a credential source.
 */
export const tokenExchangeSchema = z.strictObject({
  /** The authorization server's issuer identifier (metadata for the client library). */
  issuer: z.url().max(2048),
  /** Token endpoint; `https://`, or plain http on a loopback host (tests, a sidecar). */
  tokenEndpoint: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .refine((u) => {
      const url = new URL(u);
      return url.protocol === 'https:' || isLoopbackHostname(url.hostname);
    }, 'the token endpoint must use https:// (plain http only on a loopback host)'),
  /** RFC 8693 §2.1 `audience`: the downstream service the token is for. */
  audience: z.string().min(1).max(2048),
  /** RFC 8693 §2.1 `scope` asked for (space-separated), if any. */
  scope: z.string().min(1).max(1024).optional(),
  /** This server's client id at the authorization server. */
  clientId: z.string().min(1).max(256),
  /** The client secret, from a credential source (never in the configuration itself). */
  clientSecret: credentialSourceSchema,
  /** A token is exchanged again this many seconds before its `expires_in` runs out. */
  expirySkewSeconds: z.int().min(0).max(600).default(30),
  /** Lifetime assumed when the response has no `expires_in` (RFC 8693 §2.2.1: RECOMMENDED), s. */
  defaultLifetimeSeconds: z.int().min(1).max(3_600).default(60),
  /** Time allowed for one token request, ms (rounded up to whole seconds). */
  timeoutMs: z.int().min(100).max(60_000).default(5_000),
  /** Most (principal, audience) tokens kept; the oldest is dropped beyond it. */
  maxCachedTokens: z.int().min(1).max(100_000).default(1_000),
});
/** See {@link tokenExchangeSchema}. */
export type TokenExchangeSettings = z.infer<typeof tokenExchangeSchema>;

/**
 * `principalCredentials.secretTemplate`: a per-principal Secrets Manager secret. `secretIdTemplate`
 * contains `{principal}`, replaced by the principal id (which must match
 * `[A-Za-z0-9_+=.@-]{1,128}`, the secret-name charset without `/` — a principal can never
 * reach another path).
 */
export const secretTemplateSchema = z.strictObject({
  secretsManager: secretsManagerSourceSchema.omit({ secretId: true }).extend({
    secretIdTemplate: z
      .string()
      .min(1)
      .max(2048)
      .regex(/^[A-Za-z0-9/_+=.@:{}-]+$/, 'not a secret name template')
      .refine((t) => t.includes('{principal}'), 'the template must contain {principal}'),
  }),
});

/**
 * `principalCredentials`: each call's upstream client uses a credential of the caller's own
 * (RFC 8693 token exchange, or a per-principal secret), never the shared service credential
 * unless `fallback: service` says so.
 */
export const principalCredentialsSchema = z
  .strictObject({
    /** The credential scopes that get per-principal credentials. */
    scopes: z
      .array(z.enum(['read', 'write']))
      .min(1)
      .max(2)
      .default(['read', 'write']),
    tokenExchange: tokenExchangeSchema.optional(),
    secretTemplate: secretTemplateSchema.optional(),
    /**
     * `refuse` (default): a call with no per-principal credential (no caller token to exchange,
     * a refused exchange, no secret) fails. `service`: it uses the shared service credential.
     */
    fallback: z.enum(['refuse', 'service']).default('refuse'),
    /** Most per-principal upstream clients kept open; the least recently used is closed beyond it. */
    maxClients: z.int().min(1).max(10_000).default(100),
  })
  .refine((p) => (p.tokenExchange === undefined) !== (p.secretTemplate === undefined), {
    message: 'configure exactly one of tokenExchange or secretTemplate',
  });
/** See {@link principalCredentialsSchema}. */
export type PrincipalCredentialsSettings = z.infer<typeof principalCredentialsSchema>;

const auditRemoteBase = {
  /** Names the sink in metrics, logs and its spool directory. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lowercase letters, digits, _ and -'),
  /**
   * `required` (default): a full spool fails calls closed. `best-effort`: a full spool drops
   * this sink's copy and counts it (`hmcp_audit_records_dropped_total`).
   */
  mode: z.enum(['required', 'best-effort']).default('required'),
  /** Most bytes waiting in the spool (64 KiB – 16 GiB; default 64 MiB). */
  spoolMaxBytes: z
    .int()
    .min(64 * 1024)
    .max(16 * 1024 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  /** PEM CA bundle to trust (default: the system store). */
  caFile: z.string().min(1).max(4096).optional(),
};

/** One remote audit sink (`audit.remote[]`), by `type`. */
export const auditRemoteSinkSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('https-json'),
    ...auditRemoteBase,
    url: z.url({ protocol: /^https$/ }),
    shape: z.enum(['splunk-hec', 'elasticsearch-bulk']),
    /** HEC token or Elasticsearch API key. */
    token: credentialSourceSchema.optional(),
    /** Elasticsearch index (default `hardened-mcp-audit`). */
    index: z.string().min(1).max(255).optional(),
  }),
  z.strictObject({
    type: z.literal('syslog-tls'),
    ...auditRemoteBase,
    host: z.string().min(1).max(255),
    /** RFC 5425 port: 6514. */
    port: z.int().min(1).max(65535).default(6514),
    clientCertFile: z.string().min(1).max(4096).optional(),
    clientKeyFile: z.string().min(1).max(4096).optional(),
    appName: z
      .string()
      .regex(/^[\x21-\x7e]{1,48}$/)
      .optional(),
  }),
  z.strictObject({
    type: z.literal('otlp-http'),
    ...auditRemoteBase,
    /** OTLP/HTTP logs endpoint, e.g. `https://collector:4318/v1/logs`. */
    url: z.url({ protocol: /^https?$/ }),
    /** Value of the `Authorization` header, from a credential source. */
    authorization: credentialSourceSchema.optional(),
  }),
]);
/** See {@link auditRemoteSinkSchema}. */
export type AuditRemoteSinkConfig = z.infer<typeof auditRemoteSinkSchema>;

const rateLimitSchema = z.strictObject({
  /** Calls allowed per window. */
  points: z.int().min(1).max(1_000_000),
  /** Window length in seconds. */
  durationSeconds: z.int().min(1).max(86_400),
});

const toolSettingsSchema = z.strictObject({
  /**
   * `required` (the default for write tools) asks the human through MCP elicitation before every
   * call, read tools included; `none` turns it off for a write tool (access-control reasons,
   * e.g. restricted data, still ask).
   */
  approval: z.enum(['required', 'none']).optional(),
  rateLimit: rateLimitSchema.optional(),
});

const hostnameSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.:[\]-]+$/, 'not a host name');

/** Streamable HTTP transport settings (MCP 2025-11-25 "Transports"). */
export const httpConfigSchema = z
  .strictObject({
    /** Bind address. Anything but loopback requires `auth.mode` oauth or api-key. */
    host: z.string().min(1).max(255).default('127.0.0.1'),
    /** Listening port (0 = any free port). */
    port: z.int().min(0).max(65_535).default(3000),
    /**
     * Host header names accepted (case-insensitive). A name without a port admits the listening
     * port and the port of `publicUrl`; `name:port` admits exactly that port. A Host header
     * without a port means 80 (http) or 443 (https). Default: loopback names.
     */
    allowedHosts: z.array(hostnameSchema).max(64).default(['localhost', '127.0.0.1', '[::1]']),
    /**
     * Origins accepted when a request carries `Origin` (exact, e.g. `https://app.example.com`).
     * Unset: only loopback origins (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`).
     */
    allowedOrigins: z.array(z.string().url().max(2048)).max(64).optional(),
    /** Request body limit in bytes. */
    maxBodyBytes: z
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** Maximum JSON nesting depth of a request body. */
    maxJsonDepth: z.int().min(8).max(1000).default(64),
    /** No session ids: every POST stands alone (for horizontally scaled deployments). */
    stateless: z.boolean().default(false),
    /** Sessions expire after this many seconds without a request. */
    sessionIdleSeconds: z.int().min(10).max(86_400).default(900),
    maxSessions: z.int().min(1).max(100_000).default(1000),
    /** Sessions one principal may hold at once (429 past it), so no principal exhausts `maxSessions`. */
    maxSessionsPerPrincipal: z.int().min(1).max(100_000).default(64),
    /**
     * Refusals before authentication are audited per peer and reason: the first of an interval at
     * once, the rest of the interval as one record with a `count` (seconds per interval).
     */
    unauthenticatedAuditIntervalSeconds: z.int().min(1).max(3600).default(60),
    /** The canonical URL of this server's MCP endpoint (RFC 8707 resource), e.g. `https://mcp.example.com/mcp`. Default: derived from host/port. */
    publicUrl: z.string().url().max(2048).optional(),
    /** In-process TLS (TLS 1.3 minimum). Otherwise terminate TLS at a proxy. */
    tls: z
      .strictObject({ certFile: z.string().min(1).max(4096), keyFile: z.string().min(1).max(4096) })
      .optional(),
    /** Peers whose `X-Forwarded-For/Proto/Host` headers are believed (exact IP addresses). */
    trustedProxies: z.array(z.string().min(2).max(64)).max(64).default([]),
    /** On SIGTERM/SIGINT, in-flight calls get this long to finish (ms). */
    shutdownGraceMs: z.int().min(0).max(300_000).default(10_000),
    /** Health and metrics listener (`/healthz`, `/readyz`, `/metrics`), separate from `/mcp`. Port 0 = any free port; `enabled: false` turns it off. */
    management: z
      .strictObject({
        enabled: z.boolean().default(true),
        host: z.string().min(1).max(255).default('127.0.0.1'),
        port: z.int().min(0).max(65_535).default(9464),
      })
      .prefault({}),
  })
  .prefault({});

/** A static verification key: a JWK object, or a PEM file (SPKI public key / certificate). */
const staticKeySchema = z.union([
  z.strictObject({ jwk: z.record(z.string(), z.unknown()) }),
  z.strictObject({
    pemFile: z.string().min(1).max(4096),
    alg: z.string().min(2).max(16),
    kid: z.string().max(256).optional(),
  }),
]);

/**
 * One rule mapping a verified client certificate to a principal (`auth.mtls.rules[]`): the first
 * rule whose `pattern` (a regular expression matched against the whole value) matches a value of
 * `field` gives the principal (that value) and its roles and scopes.
 */
export const mtlsRuleSchema = z.strictObject({
  /** Where the value comes from: the subject's common name, or a subjectAltName of a type. */
  field: z.enum(['subject.CN', 'san.dns', 'san.uri', 'san.email']),
  /** Regular expression, anchored at both ends (e.g. `spiffe://example\\.org/billing`). */
  pattern: z
    .string()
    .min(1)
    .max(512)
    .refine((p) => {
      try {
        new RegExp(p);
        return true;
      } catch {
        return false;
      }
    }, 'not a regular expression'),
  roles: z.array(roleNameSchema).max(32).default([]),
  scopes: z.array(z.string().min(1).max(256)).max(256).default([]),
});

/**
 * Names the core itself puts into a forwarded-claims document (e.g. Postgres
 * `hardened_mcp.claims`); a forwarded claim may not shadow them.
 */
export const RESERVED_CLAIM_NAMES: readonly string[] = Object.freeze([
  'principal',
  'roles',
  'scopes',
  'transport',
]);

/** A claim name that may be forwarded (a JSON member name; not a reserved one). */
export const forwardedClaimNameSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/, 'claim names are identifiers of up to 64 characters')
  .refine(
    (n) => !RESERVED_CLAIM_NAMES.includes(n),
    'principal, roles, scopes, transport are reserved',
  );

/**
 * One forwarded claim value, bounded: a string (≤ 256 characters), a finite number, or an array
 * of ≤ 32 such strings. Used for stdio `identity.claims` and to check token claims.
 */
export const forwardedClaimValueSchema = z.union([
  z.string().max(256),
  z.number().finite(),
  z.array(z.string().max(256)).max(32),
]);

/**
 * Mutual TLS (`auth.mtls`). With `auth.mode: mtls` the verified client certificate is the
 * credential (principal from `rules`); with `auth.mode: oauth` a verified client certificate is
 * required too and a certificate-bound token (RFC 8705 `cnf.x5t#S256`) must be bound to it.
 * Needs `http.tls`.
 */
export const mtlsConfigSchema = z.strictObject({
  /** PEM bundle of the CAs that issue client certificates, from a credential source. */
  ca: credentialSourceSchema,
  /**
   * PEM CRL file(s) of those CAs: a revoked certificate is refused. Read at startup and again
   * on SIGHUP (with `ca`); an unreadable or unparsable new CRL keeps the old one.
   */
  crlFile: z.string().min(1).max(4096).optional(),
  /** Certificate → principal rules (required for `auth.mode: mtls`). */
  rules: z.array(mtlsRuleSchema).max(256).default([]),
  /** oauth mode: refuse tokens that are not certificate-bound (no `cnf.x5t#S256`). */
  requireBoundTokens: z.boolean().default(false),
});

/** Authentication of HTTP requests. */
export const authConfigSchema = z
  .strictObject({
    /** `none` (loopback only), `oauth` (OAuth 2.1 resource server, JWT access tokens) or `api-key`. */
    mode: z.enum(['none', 'oauth', 'api-key', 'mtls']).default('none'),
    /** Mutual TLS: the credential of `mode: mtls`, or a second factor with `mode: oauth`. */
    mtls: mtlsConfigSchema.optional(),
    oauth: z
      .strictObject({
        /** Expected `iss`; also listed as the authorization server in the RFC 9728 metadata. */
        issuer: z.string().url().max(2048),
        /** Expected `aud`: this server's canonical resource URL (RFC 8707). Default: `http.publicUrl`. */
        audience: z.string().url().max(2048).optional(),
        /** JWKS endpoint (cached; refreshed on an unknown `kid`). */
        jwksUrl: z.string().url().max(2048).optional(),
        /** Static keys instead of (or besides) a JWKS URL. */
        keys: z.array(staticKeySchema).max(32).default([]),
        /** Accepted signature algorithms. Never `none`, never HS* (RFC 8725 §3.1). */
        algorithms: z
          .array(
            z.enum([
              'RS256',
              'RS384',
              'RS512',
              'PS256',
              'PS384',
              'PS512',
              'ES256',
              'ES384',
              'ES512',
              'EdDSA',
            ]),
          )
          .min(1)
          .default(['RS256', 'ES256', 'EdDSA']),
        /**
         * Accepted JWT `typ`: `at+jwt` accepts only RFC 9068 access tokens (`typ` `at+jwt` or
         * `application/at+jwt`, RFC 9068 §2.1, §4), refusing ID tokens and other JWTs; `any` does
         * not check `typ` (for issuers that do not type their access tokens). `at+jwt` is
         * preferred wherever the issuer supports it.
         */
        accessTokenType: z.enum(['at+jwt', 'any']).default('any'),
        /** Allowed clock skew for `exp`/`nbf`, seconds. */
        clockToleranceSeconds: z.int().min(0).max(300).default(30),
        /** Token scope → roles (the token's scopes also count directly as scopes). */
        scopeRoles: z
          .record(z.string().min(1).max(256), z.array(roleNameSchema).max(32))
          .default({}),
        /** Scopes advertised in the protected resource metadata. */
        scopesSupported: z.array(z.string().min(1).max(256)).max(256).optional(),
        /**
         * Token claims carried into the identity (`Identity.claims`, e.g. Postgres
         * `hardened_mcp.claims`) for row-level security: an allowlist of names, never the whole
         * token. A listed claim that is absent is left out; one that is not a string, a number or
         * an array of strings, or is over the size bounds, makes the token refused.
         */
        forwardClaims: z.array(forwardedClaimNameSchema).max(32).default([]),
      })
      .optional(),
    /** API keys, stored only as SHA-256 hashes (hex) of the key. */
    apiKeys: z
      .array(
        z.strictObject({
          id: z.string().min(1).max(128),
          sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a hex SHA-256 digest'),
          principal: z.string().min(1).max(256),
          scopes: z.array(z.string().min(1).max(256)).max(256).default([]),
          roles: z.array(roleNameSchema).max(32).default([]),
          /** ISO 8601 expiry. */
          expiresAt: z.iso.datetime({ offset: true }).optional(),
        }),
      )
      .max(1000)
      .default([]),
  })
  .prefault({})
  .superRefine((auth, ctx) => {
    if (auth.mode === 'oauth' && !auth.oauth)
      ctx.addIssue({
        code: 'custom',
        path: ['oauth'],
        message: 'auth.mode oauth needs an auth.oauth section',
      });
    if (
      auth.mode === 'oauth' &&
      auth.oauth &&
      !auth.oauth.jwksUrl &&
      auth.oauth.keys.length === 0
    ) {
      ctx.addIssue({ code: 'custom', path: ['oauth'], message: 'give jwksUrl or keys' });
    }
    if (auth.mode === 'mtls' && (!auth.mtls || auth.mtls.rules.length === 0))
      ctx.addIssue({
        code: 'custom',
        path: ['mtls'],
        message: 'auth.mode mtls needs auth.mtls with at least one rule',
      });
    if (auth.mtls && auth.mode !== 'mtls' && auth.mode !== 'oauth')
      ctx.addIssue({
        code: 'custom',
        path: ['mtls'],
        message: 'auth.mtls is used with auth.mode mtls or oauth',
      });
    if (auth.mode === 'api-key' && auth.apiKeys.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['apiKeys'],
        message: 'auth.mode api-key needs apiKeys',
      });
  });

/**
 * The configuration every server shares (the connector adds its own section under its name).
 * Unknown keys are errors at every level.
 */
export const coreConfigShape = {
  /** `read-only` (default): write tools do not exist. `read-write`: they exist when a write credential is configured. */
  mode: z.enum(['read-only', 'read-write']).default('read-only'),
  /** stdio identity; defaults to the OS user with `defaultRoles`. */
  identity: z
    .strictObject({
      principal: z.string().min(1).max(256).optional(),
      roles: z.array(roleNameSchema).max(32).optional(),
      /**
       * The stdio principal's attributes: read by policies and classification under the claim
       * names of `policies.claims` (e.g. `{ department: sales, groups: [ops], clearance:
       * confidential }`), and handed to the data source (e.g. Postgres `hardened_mcp.claims` for
       * row-level security) — the stdio counterpart of `auth.oauth.forwardClaims`.
       */
      claims: z
        .record(forwardedClaimNameSchema, forwardedClaimValueSchema)
        .refine((c) => Object.keys(c).length <= 32, 'at most 32 claims')
        .optional(),
    })
    .prefault({}),
  /** Roles given to a stdio principal that has no configured roles. */
  defaultRoles: z.array(roleNameSchema).max(32).default(['reader']),
  /** Role → scopes. Merged over the connector's defaults (`reader`, `writer`). */
  roles: z.record(roleNameSchema, z.array(scopeSchema).max(64)).default({}),
  tools: z
    .strictObject({
      /** If set, only these tools can be enabled. */
      allow: z.array(toolNameSchema).max(256).optional(),
      /** Per-tool settings. */
      settings: z.record(toolNameSchema, toolSettingsSchema).default({}),
    })
    .prefault({}),
  /** Cedar policies as code (see README "Policies"). */
  policies: policiesConfigSchema,
  /** Data classification labels and their enforcement (see README "Classification"). */
  classification: classificationConfigSchema,
  /** Default rate limit per principal and tool. */
  rateLimit: rateLimitSchema.default({ points: 120, durationSeconds: 60 }),
  output: z
    .strictObject({
      /** Ceiling on rows returned per call (a call may ask for fewer). */
      maxRows: z.int().min(1).max(100_000).default(500),
      /** Ceiling on the serialized result size per call, in bytes. */
      maxBytes: z
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(256 * 1024),
      redaction: z
        .strictObject({
          /** PII detectors (e-mail, phone, card, IBAN, national ids). Secrets are always redacted. */
          pii: z.boolean().default(true),
          /** Extra key/column-name rules: exact names (case-insensitive) or `/regex/flags`. */
          keyRules: z.array(z.string().min(1).max(256)).max(256).default([]),
        })
        .prefault({}),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /** JSON Lines audit records on stderr. */
      stderr: z.boolean().default(true),
      /** Append-only audit file (created with mode 0600), hash-chained across restarts. */
      file: z.string().min(1).max(4096).optional(),
      /**
       * When a record is durable before the call's answer: `group` (default; group commit, one
       * `fdatasync` per batch of concurrent records) or `fsync` (one per record). See `AuditLog`.
       */
      durability: z.enum(['group', 'fsync']).default('group'),
      /** With `group`: ms the first record of a batch waits for others (0–100; default 0). */
      groupCommitWindowMs: z.int().min(0).max(100).default(0),
      /**
       * The audit file deleted, replaced or truncated under the server: `stay_closed` (default;
       * calls fail closed and readiness is false until restart) or `reopen` (move it aside, start
       * a new file with a chain-continuation record).
       */
      onFileChange: z.enum(['stay_closed', 'reopen']).default('stay_closed'),
      /**
       * Remote sinks (SIEM), each fed through its own durable spool under `spoolDir`. See
       * `audit/remote-config.ts` and the README ("Shipping audit records").
       */
      remote: z.array(auditRemoteSinkSchema).max(8).default([]),
      /** Directory of the remote sinks' spools (mode 0700); default `<file>.spool`. */
      spoolDir: z.string().min(1).max(4096).optional(),
      /**
       * Signed checkpoints: every `every` records and at shutdown, an `audit:checkpoint` record
       * signs the chain head (HMAC-SHA256 or Ed25519, key from a credential source).
       */
      checkpoint: z
        .strictObject({
          every: z.int().min(1).max(1_000_000).default(1000),
          algorithm: z.enum(['hmac-sha256', 'ed25519']),
          /** HMAC: the shared key; Ed25519: the PKCS#8 PEM private key. */
          key: credentialSourceSchema,
          /** Names the key in the record so a verifier picks the right one (no secret). */
          keyId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
        })
        .optional(),
    })
    .superRefine((audit, ctx) => {
      const names = new Set<string>();
      for (const [i, sink] of audit.remote.entries()) {
        if (names.has(sink.name)) {
          ctx.addIssue({ code: 'custom', path: ['remote', i, 'name'], message: 'duplicate name' });
        }
        names.add(sink.name);
      }
      if (audit.remote.length > 0 && !audit.spoolDir && !audit.file) {
        ctx.addIssue({
          code: 'custom',
          path: ['spoolDir'],
          message: 'remote sinks need a spool: set audit.spoolDir (or audit.file)',
        });
      }
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** `stdio` (default) or `http` (Streamable HTTP on `/mcp`). */
  transport: z.enum(['stdio', 'http']).default('stdio'),
  http: httpConfigSchema,
  auth: authConfigSchema,
  /**
   * Shared rate-limit store. `url` is a credential source (a Redis URL may carry a password), by
   * default the `REDIS_URL` environment variable; unset means an in-memory store.
   */
  redis: z.strictObject({ url: credentialSourceSchema.default({ env: 'REDIS_URL' }) }).prefault({}),
  /** Credential sources per scope; defaults come from the connector (e.g. `POSTGRES_URL`). */
  credentials: z
    .strictObject({
      read: credentialSourceSchema.optional(),
      write: credentialSourceSchema.optional(),
    })
    .prefault({}),
  /** Per-principal upstream credentials (see {@link principalCredentialsSchema}); absent: the service credential. */
  principalCredentials: principalCredentialsSchema.optional(),
};

/** The core's part of a parsed configuration. */
export type CoreConfig = z.infer<z.ZodObject<typeof coreConfigShape>>;

/**
 * Builds the full configuration schema of a connector: the core keys plus the connector's own
 * section under `key` (e.g. `postgres`). Strict at the top level too.
 */
export function defineConfigSchema<K extends string, S extends z.ZodType>(key: K, section: S) {
  return z.strictObject({ ...coreConfigShape, [key]: section } as typeof coreConfigShape & {
    [P in K]: S;
  });
}

/**
 * Reads a YAML or JSON configuration file (`.json` → JSON, anything else → YAML 1.2).
 *
 * @throws StartupError when the file cannot be read or parsed (message names the file, not its content).
 */
export async function readConfigFile(path: string): Promise<unknown> {
  const isJson = extname(path).toLowerCase() === '.json';
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError(`cannot read config file ${path} (${code})`);
  }
  try {
    // YAML's parser is loaded only for a YAML file (startup cost, issue 14)
    return isJson ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (err) {
    const where = err instanceof Error && 'linePos' in err ? ' (YAML syntax error)' : '';
    throw new StartupError(`config file ${path} is not valid ${isJson ? 'JSON' : 'YAML'}${where}`);
  }
}

/**
 * Parses configuration once with zod and deep-freezes the result.
 *
 * @throws StartupError listing every problem as `path: message`, one per issue, joined by `; `.
 */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown): Readonly<z.infer<S>> {
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
      }
      return `${path}: ${issue.message}`;
    });
    throw new StartupError(`invalid configuration: ${problems.join('; ')}`);
  }
  return deepFreeze(result.data);
}

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  if (value !== null && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child, seen);
  }
  return value;
}
