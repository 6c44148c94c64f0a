import { once } from 'node:events';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CredentialHandle, Secret } from '../credentials.js';
import { ErrorCode, StartupError } from '../errors.js';
import { createUpstreamClient } from './client.js';
import { UpstreamCallError, UpstreamRateLimitedError } from './errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TestServer {
  readonly server: Server;
  readonly origin: string;
  readonly seen: {
    method: string;
    url: string;
    authorization: string | undefined;
  }[];
  handler: Handler;
}

async function listen(
  server: Server,
  scheme: 'http' | 'https',
  host = '127.0.0.1',
): Promise<TestServer> {
  const t: TestServer = {
    server,
    origin: '',
    seen: [],
    handler: (_req, res) => res.end('{}'),
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    t.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
    });
    t.handler(req, res);
  });
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(t, {
    origin: `${scheme}://${host === '::1' ? '[::1]' : host}:${port}`,
  });
}

async function certFor(name: string) {
  return generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
}

/** Runs `fn` and returns what it threw (fails the test when it does not throw). */
async function thrown(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const TOKEN = 'tok-0123456789abcdef-secret';
let https: TestServer;
let untrusted: TestServer;
let http: TestServer;
let other: TestServer;

beforeAll(async () => {
  const trusted = await certFor('upstream-test');
  const stranger = await certFor('stranger');
  // The test's CA is trusted the way an operator's private CA would be (NODE_EXTRA_CA_CERTS);
  // `stranger` is not, so its server fails the handshake.
  setDefaultCACertificates([...getCACertificates('default'), trusted.cert]);
  https = await listen(createHttpsServer({ key: trusted.private, cert: trusted.cert }), 'https');
  untrusted = await listen(
    createHttpsServer({ key: stranger.private, cert: stranger.cert }),
    'https',
  );
  http = await listen(createHttpServer(), 'http');
  other = await listen(createHttpServer(), 'http');
});

afterAll(async () => {
  for (const s of [https, untrusted, http, other]) {
    s.server.closeAllConnections();
    s.server.close();
  }
});

beforeEach(() => {
  for (const s of [https, untrusted, http, other]) {
    s.seen.length = 0;
    s.handler = (_req, res) => res.end('{}');
  }
});

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

describe('createUpstreamClient: requests over real HTTPS', () => {
  it('sends the path and query to the configured origin with the credential, and reads JSON', async () => {
    https.handler = (req, res) => json(res, 200, { path: req.url, accept: req.headers.accept });
    const client = createUpstreamClient({
      origin: `${https.origin}/base/`,
      credential: new Secret(TOKEN, 'test'),
      headers: { accept: 'application/json' },
    });
    const r = await client.request({
      method: 'GET',
      path: '/rest/api/3/issue/ACME-1',
      query: {
        fields: ['summary', 'status'],
        expand: undefined,
        maxResults: 5,
      },
    });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      path: '/base/rest/api/3/issue/ACME-1?fields=summary&fields=status&maxResults=5',
      accept: 'application/json',
    });
    expect(https.seen[0]?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('hands back 4xx answers for the connector to map, and refuses non-JSON as invalid_response', async () => {
    https.handler = (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>not found</html>');
    };
    const client = createUpstreamClient({ origin: https.origin });
    const r = await client.request({ method: 'GET', path: '/missing' });
    expect(r.status).toBe(404);
    expect(r.text()).toContain('not found');
    const err = (() => {
      try {
        r.json();
      } catch (e) {
        return e as UpstreamCallError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UpstreamCallError);
    expect(err?.reason).toBe('invalid_response');
    expect(err?.code).toBe(ErrorCode.UpstreamError);
  });

  it('maps an untrusted certificate to tls (upstream_unavailable)', async () => {
    const client = createUpstreamClient({
      origin: untrusted.origin,
      credential: new Secret(TOKEN, 't'),
    });
    const err = await thrown(() => client.request({ method: 'GET', path: '/x' }));
    expect(err).toBeInstanceOf(UpstreamCallError);
    expect((err as UpstreamCallError).reason).toBe('tls');
    expect((err as UpstreamCallError).code).toBe(ErrorCode.UpstreamUnavailable);
    expect(untrusted.seen).toHaveLength(0);
  });
});

describe('createUpstreamClient: failures map to stable, sanitized codes', () => {
  it('maps a name that cannot resolve (.invalid, RFC 6761 §6.4) to dns', async () => {
    const client = createUpstreamClient({ origin: 'https://upstream.invalid' });
    const err = await thrown(() =>
      client.request({
        method: 'GET',
        path: '/search',
        query: { q: 'ana@example.com' },
      }),
    );
    expect((err as UpstreamCallError).reason).toBe('dns');
    expect((err as UpstreamCallError).code).toBe(ErrorCode.UpstreamUnavailable);
    expect(err.message).not.toMatch(/invalid|example|search/);
  });

  it('maps a closed port to connection_refused', async () => {
    const closed = await listen(createHttpServer(), 'http');
    closed.server.close();
    await once(closed.server, 'close');
    const client = createUpstreamClient({ origin: closed.origin });
    const err = await thrown(() => client.request({ method: 'GET', path: '/x' }));
    expect((err as UpstreamCallError).reason).toBe('connection_refused');
  });

  it('maps a connection the upstream destroys to connection_reset', async () => {
    http.handler = (req) => req.socket.destroy();
    const client = createUpstreamClient({ origin: http.origin });
    const err = await thrown(() => client.request({ method: 'GET', path: '/x' }));
    expect((err as UpstreamCallError).reason).toBe('connection_reset');
  });

  it('maps 5xx to server_error and keeps the status out of the message', async () => {
    http.handler = (_req, res) => json(res, 502, { error: `upstream says ${TOKEN}` });
    const client = createUpstreamClient({ origin: http.origin });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('server_error');
    expect(err.status).toBe(502);
    expect(err.message).not.toContain(TOKEN);
  });

  it('never echoes the token, the path or the query in any error message', async () => {
    const secret = new Secret(TOKEN, 'test');
    const messages: string[] = [];
    for (const origin of ['https://upstream.invalid', untrusted.origin]) {
      const client = createUpstreamClient({ origin, credential: secret });
      const err = await thrown(() =>
        client.request({
          method: 'GET',
          path: '/users/ana',
          query: { token: TOKEN, email: 'ana@example.com' },
        }),
      );
      messages.push(err.message, String(err));
    }
    for (const m of messages) {
      expect(m).not.toContain(TOKEN);
      expect(m).not.toContain('ana');
      expect(m).not.toContain('127.0.0.1');
    }
  });
});

describe('createUpstreamClient: deadline and abort', () => {
  it('fails with timeout/deadline when the upstream does not answer in time', async () => {
    http.handler = () => {
      // never answers
    };
    const client = createUpstreamClient({
      origin: http.origin,
      timeoutMs: 150,
    });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/slow' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('deadline');
    expect(err.code).toBe(ErrorCode.Timeout);
  });

  it('stops when the deadline passes in the middle of the body', async () => {
    http.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items":[');
      // the rest never comes
    };
    const client = createUpstreamClient({
      origin: http.origin,
      timeoutMs: 150,
    });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/slow-body' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('deadline');
  });

  it("propagates the caller's abort signal (cancelled) and the upstream sees the connection close", async () => {
    const closed = new Promise<void>((resolve) => {
      http.handler = (req) => req.socket.once('close', () => resolve());
    });
    const client = createUpstreamClient({ origin: http.origin });
    const controller = new AbortController();
    const pending = thrown(() =>
      client.request({ method: 'GET', path: '/x', signal: controller.signal }),
    );
    while (http.seen.length === 0) await new Promise((r) => setImmediate(r));
    controller.abort();
    const err = (await pending) as UpstreamCallError;
    expect(err.reason).toBe('cancelled');
    await closed;
  });
});

describe('createUpstreamClient: byte bound', () => {
  it('stops reading a streamed body past maxResponseBytes', async () => {
    let written = 0;
    http.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      const pump = () => {
        while (written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => undefined);
      pump();
    };
    const client = createUpstreamClient({
      origin: http.origin,
      maxResponseBytes: 100_000,
    });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/big' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('response_too_large');
    expect(err.code).toBe(ErrorCode.UpstreamError);
    // The server was stopped long before it could send everything.
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a body whose Content-Length is over the bound without reading it', async () => {
    http.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(10_000) });
      res.end(Buffer.alloc(10_000));
    };
    const client = createUpstreamClient({ origin: http.origin });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/big', maxResponseBytes: 1_000 }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('response_too_large');
  });
});

describe('createUpstreamClient: rate limits', () => {
  it('maps 429 with Retry-After in delta-seconds to rate_limited with retryAfterMs, no retry past the bound', async () => {
    http.handler = (_req, res) => json(res, 429, { error: 'slow down' }, { 'retry-after': '120' });
    const client = createUpstreamClient({ origin: http.origin });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamRateLimitedError;
    expect(err).toBeInstanceOf(UpstreamRateLimitedError);
    expect(err.code).toBe(ErrorCode.RateLimited);
    expect(err.retryAfterMs).toBe(120_000);
    expect(http.seen).toHaveLength(1);
  });

  it('maps 429 with Retry-After as an HTTP-date', async () => {
    const at = new Date(Date.now() + 90_000).toUTCString();
    http.handler = (_req, res) => json(res, 429, {}, { 'retry-after': at });
    const client = createUpstreamClient({ origin: http.origin });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamRateLimitedError;
    expect(err.retryAfterMs).toBeGreaterThan(80_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(90_000);
  });

  it('retries a read once when the wait is within maxRetryWaitMs', async () => {
    http.handler = (_req, res) =>
      http.seen.length === 1
        ? json(res, 429, {}, { 'retry-after': '0' })
        : json(res, 200, { ok: true });
    const client = createUpstreamClient({ origin: http.origin });
    const r = await client.request({ method: 'GET', path: '/x' });
    expect(r.json()).toEqual({ ok: true });
    expect(http.seen).toHaveLength(2);
  });

  it('gives up after maxReadRetries', async () => {
    http.handler = (_req, res) => json(res, 429, {}, { 'retry-after': '0' });
    const client = createUpstreamClient({
      origin: http.origin,
      maxReadRetries: 2,
    });
    const err = await thrown(() => client.request({ method: 'GET', path: '/x' }));
    expect(err).toBeInstanceOf(UpstreamRateLimitedError);
    expect(http.seen).toHaveLength(3);
  });

  it('never retries a write, even with a short wait', async () => {
    http.handler = (_req, res) => json(res, 429, {}, { 'retry-after': '0' });
    const client = createUpstreamClient({ origin: http.origin });
    const err = await thrown(() =>
      client.request({
        method: 'POST',
        path: '/issue',
        json: { summary: 'x' },
      }),
    );
    expect(err).toBeInstanceOf(UpstreamRateLimitedError);
    expect(http.seen).toHaveLength(1);
  });

  it("maps a vendor's rate-limit answer (Slack: HTTP 200 {ok:false,error:'ratelimited'})", async () => {
    http.handler = (_req, res) =>
      json(res, 200, { ok: false, error: 'ratelimited' }, { 'retry-after': '30' });
    const client = createUpstreamClient({
      origin: http.origin,
      isRateLimited: (r) => {
        const body = r.json() as { ok?: boolean; error?: string };
        return body.ok === false && body.error === 'ratelimited';
      },
    });
    const err = (await thrown(() =>
      client.request({
        method: 'POST',
        path: '/api/conversations.history',
        access: 'read',
      }),
    )) as UpstreamRateLimitedError;
    expect(err).toBeInstanceOf(UpstreamRateLimitedError);
    expect(err.retryAfterMs).toBe(30_000);
    expect(err.status).toBe(200);
  });

  it('treats a vendor predicate that throws (a non-JSON answer) as not rate limited', async () => {
    http.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain text');
    };
    const client = createUpstreamClient({
      origin: http.origin,
      isRateLimited: (r) => (r.json() as { error?: string }).error === 'ratelimited',
    });
    const r = await client.request({ method: 'GET', path: '/x' });
    expect(r.text()).toBe('plain text');
  });

  it('uses the default wait when a rate-limit answer has no usable Retry-After', async () => {
    http.handler = (_req, res) => json(res, 429, {}, { 'retry-after': 'soon' });
    const client = createUpstreamClient({
      origin: http.origin,
      defaultRetryAfterMs: 5_000,
    });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamRateLimitedError;
    expect(err.retryAfterMs).toBe(5_000);
  });
});

describe('createUpstreamClient: 401 and credential refresh', () => {
  function rotating(values: string[]): CredentialHandle & { refreshes: number } {
    let i = 0;
    return {
      source: 'test rotating',
      refreshes: 0,
      current() {
        return new Secret(values[Math.min(i, values.length - 1)]!, 'test rotating');
      },
      async refresh() {
        this.refreshes++;
        i++;
        return this.current();
      },
    };
  }

  it('refreshes the credential once and retries with the new value', async () => {
    http.handler = (req, res) =>
      req.headers.authorization === 'Bearer new-token-value'
        ? json(res, 200, { ok: true })
        : json(res, 401, { error: 'expired' });
    const credential = rotating(['old-token-value', 'new-token-value']);
    const client = createUpstreamClient({ origin: http.origin, credential });
    const r = await client.request({
      method: 'POST',
      path: '/api/chat.postMessage',
      json: { text: 'hi' },
    });
    expect(r.status).toBe(200);
    expect(credential.refreshes).toBe(1);
    expect(http.seen.map((s) => s.authorization)).toEqual([
      'Bearer old-token-value',
      'Bearer new-token-value',
    ]);
  });

  it('gives up with auth_rejected after one refresh', async () => {
    http.handler = (_req, res) => json(res, 401, { error: 'invalid_auth' });
    const credential = rotating(['a-token-value', 'b-token-value', 'c-token-value']);
    const client = createUpstreamClient({ origin: http.origin, credential });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('auth_rejected');
    expect(err.code).toBe(ErrorCode.UpstreamUnavailable);
    expect(credential.refreshes).toBe(1);
    expect(http.seen).toHaveLength(2);
  });

  it('maps a failed refresh to credential_refresh_failed', async () => {
    http.handler = (_req, res) => json(res, 401, {});
    const credential: CredentialHandle = {
      source: 'test',
      current: () => new Secret('a-token-value', 'test'),
      refresh: () => Promise.reject(new Error('secrets manager unreachable')),
    };
    const client = createUpstreamClient({ origin: http.origin, credential });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('credential_refresh_failed');
    expect(http.seen).toHaveLength(1);
  });

  it('uses a custom Authorization scheme (Jira: Basic email:token)', async () => {
    const client = createUpstreamClient({
      origin: http.origin,
      credential: new Secret('ana@example.com:api-token-123', 'test'),
      authorization: (s) => `Basic ${Buffer.from(s.reveal()).toString('base64')}`,
    });
    await client.request({ method: 'GET', path: '/rest/api/3/myself' });
    expect(http.seen[0]?.authorization).toBe(
      `Basic ${Buffer.from('ana@example.com:api-token-123').toString('base64')}`,
    );
  });
});

describe('createUpstreamClient: the origin is fixed', () => {
  it('does not follow a redirect to another origin (nor send it the credential)', async () => {
    http.handler = (_req, res) => {
      res.writeHead(302, { location: `${other.origin}/steal` });
      res.end();
    };
    const client = createUpstreamClient({
      origin: http.origin,
      credential: new Secret(TOKEN, 't'),
    });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('redirect');
    expect(err.status).toBe(302);
    expect(other.seen).toHaveLength(0);
  });

  it('does not follow a same-origin redirect either', async () => {
    http.handler = (req, res) => {
      if (req.url === '/x') {
        res.writeHead(307, { location: '/y' });
        res.end();
      } else json(res, 200, {});
    };
    const client = createUpstreamClient({ origin: http.origin });
    const err = (await thrown(() =>
      client.request({ method: 'GET', path: '/x' }),
    )) as UpstreamCallError;
    expect(err.reason).toBe('redirect');
    expect(http.seen).toHaveLength(1);
  });

  it('refuses origin-changing and unclean paths before sending anything', async () => {
    const client = createUpstreamClient({
      origin: `${http.origin}/base`,
      credential: new Secret(TOKEN, 't'),
    });
    for (const path of [
      '//evil.example/x',
      'http://evil.example/x',
      'https://evil.example/x',
      'evil.example/x',
      '',
      '/\\evil.example/x',
      '\\\\evil.example\\x',
      '/%2F%2Fevil.example/x',
      '/%2f/evil',
      '/%5Cevil',
      '/a/../../admin',
      '/a/%2e%2e/admin',
      '/a/.%2E/admin',
      '/a/./b',
      '/a/b?token=x',
      '/a#frag',
      '/a b',
      '/a/%00',
      '/ünïcode',
      '/a//b',
    ]) {
      const err = await thrown(() => client.request({ method: 'GET', path }));
      expect(err, path).toBeInstanceOf(UpstreamCallError);
      expect((err as UpstreamCallError).reason, path).toBe('path_refused');
      expect((err as UpstreamCallError).code).toBe(ErrorCode.InvalidInput);
    }
    expect(http.seen).toHaveLength(0);
    // `/@evil.example` is a legal path segment on the configured origin, not another origin.
    await client.request({ method: 'GET', path: '/@evil.example' });
    expect(http.seen.map((s) => s.url)).toEqual(['/base/@evil.example']);
  });

  it('refuses reserved headers and both json and body', async () => {
    expect(() =>
      createUpstreamClient({
        origin: http.origin,
        headers: { Authorization: 'x' },
      }),
    ).toThrow(TypeError);
    const client = createUpstreamClient({ origin: http.origin });
    await expect(
      client.request({ method: 'GET', path: '/x', headers: { cookie: 'a=b' } }),
    ).rejects.toThrow(TypeError);
    await expect(
      client.request({ method: 'POST', path: '/x', json: {}, body: '{}' }),
    ).rejects.toThrow(TypeError);
    expect(http.seen).toHaveLength(0);
  });

  it('accepts https and loopback http origins only', () => {
    for (const bad of [
      'http://api.example.com',
      'http://10.0.0.1',
      'ftp://127.0.0.1',
      'https://user:pass@api.example.com',
      'https://api.example.com/?token=x',
      'https://api.example.com/#x',
      'https://api.example.com/a/../b',
      'not a url',
    ]) {
      expect(() => createUpstreamClient({ origin: bad }), bad).toThrow(StartupError);
    }
    for (const good of [
      'https://api.example.com',
      'https://jira.example.com/jira/',
      'http://127.0.0.1:8080',
      'http://127.1.2.3',
      'http://localhost:3000',
      'http://[::1]:3000',
    ]) {
      expect(() => createUpstreamClient({ origin: good }), good).not.toThrow();
    }
  });
});
