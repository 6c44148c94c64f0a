/**
 * A local OAuth 2.0 token endpoint speaking RFC 8693 token exchange, for tests of per-principal
 * credentials: a real HTTP server on 127.0.0.1 that checks what a token-exchange client must send
 * and records every request.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';

/** RFC 8693 §2.1 grant type. */
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 access token type identifier. */
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/** One request the endpoint received (form fields as sent; the client secret as checked). */
export interface TokenExchangeRequest {
  readonly grantType: string | null;
  readonly subjectToken: string | null;
  readonly subjectTokenType: string | null;
  readonly requestedTokenType: string | null;
  readonly audience: string | null;
  readonly scope: string | null;
  /** The client id of the `Authorization: Basic` header, if any. */
  readonly clientId: string | undefined;
  /** Whether the Basic credentials matched. */
  readonly clientAuthenticated: boolean;
  /** HTTP status answered. */
  readonly status: number;
  /** The token issued (status 200), else undefined. */
  readonly issued: string | undefined;
}

/** Options of {@link startTokenEndpoint}. */
export interface TokenEndpointOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The only audience tokens are issued for (others: 400 `invalid_target`). */
  readonly audience: string;
  /** `expires_in` of an issued token, s (default 300); `null` leaves it out. */
  expiresIn?: number | null;
  /** Subject tokens the endpoint refuses with 400 `invalid_grant`. */
  readonly refuse?: ((subjectToken: string) => boolean) | undefined;
}

/** A running token endpoint. */
export interface TokenEndpoint {
  /** `http://127.0.0.1:PORT` (also the issuer). */
  readonly issuer: string;
  /** `http://127.0.0.1:PORT/token`. */
  readonly url: string;
  /** Every request so far, in order. */
  readonly requests: readonly TokenExchangeRequest[];
  /** Changes the `expires_in` of tokens issued from now on (`null`: none sent). */
  setExpiresIn(seconds: number | null): void;
  close(): Promise<void>;
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const m = /^Basic (.+)$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return { id: unform(decoded.slice(0, i)), secret: unform(decoded.slice(i + 1)) };
}

/**
 * Starts the endpoint. `POST /token` with `application/x-www-form-urlencoded`: the client must
 * authenticate with `client_secret_basic` (else 401 `invalid_client`), send `grant_type` =
 * token exchange (else 400 `unsupported_grant_type`), a `subject_token` with
 * `subject_token_type` = access token (else 400 `invalid_request`) and the configured
 * `audience` (else 400 `invalid_target`). It answers `{access_token, issued_token_type,
 * token_type: "Bearer", expires_in}` with a fresh random token.
 */
export async function startTokenEndpoint(opts: TokenEndpointOptions): Promise<TokenEndpoint> {
  const requests: TokenExchangeRequest[] = [];
  let expiresIn: number | null = opts.expiresIn === undefined ? 300 : opts.expiresIn;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const form = await readForm(req);
      const basic = basicCredentials(req.headers.authorization);
      const clientAuthenticated =
        basic !== undefined && basic.id === opts.clientId && basic.secret === opts.clientSecret;
      const base = {
        grantType: form.get('grant_type'),
        subjectToken: form.get('subject_token'),
        subjectTokenType: form.get('subject_token_type'),
        requestedTokenType: form.get('requested_token_type'),
        audience: form.get('audience'),
        scope: form.get('scope'),
        clientId: basic?.id,
        clientAuthenticated,
      };
      const answer = (status: number, body: Record<string, unknown>, issued?: string) => {
        requests.push({ ...base, status, issued });
        res
          .writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
          .end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/token')
        return answer(404, { error: 'invalid_request' });
      if (!clientAuthenticated) return answer(401, { error: 'invalid_client' });
      if (base.grantType !== GRANT) return answer(400, { error: 'unsupported_grant_type' });
      if (!base.subjectToken || base.subjectTokenType !== ACCESS_TOKEN)
        return answer(400, { error: 'invalid_request' });
      if (base.audience !== opts.audience) return answer(400, { error: 'invalid_target' });
      if (opts.refuse?.(base.subjectToken)) return answer(400, { error: 'invalid_grant' });
      const issued = `xt-${randomBytes(16).toString('hex')}`;
      answer(
        200,
        {
          access_token: issued,
          issued_token_type: ACCESS_TOKEN,
          token_type: 'Bearer',
          ...(expiresIn === null ? {} : { expires_in: expiresIn }),
        },
        issued,
      );
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const issuer = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    issuer,
    url: `${issuer}/token`,
    requests,
    setExpiresIn(seconds) {
      expiresIn = seconds;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
