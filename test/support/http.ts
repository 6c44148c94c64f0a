/**
 * Helpers for the black-box HTTP suites: a built server bin (`hardened-mcp-postgres` unless told
 * otherwise) spawned with `--transport http`, raw HTTP requests (full control over Host, Origin, bodies), a local JWKS
 * endpoint with keys generated in the test, and token minting with `jose`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server,
} from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { expect } from 'vitest';
import { POSTGRES_BIN, writeTempConfig } from './server.ts';

// ---------------------------------------------------------------------------------------------
// The server process

/** A server bin running with `--transport http` (`hardened-mcp-postgres` by default). */
export interface HttpServerProcess {
  /** `http://127.0.0.1:PORT/mcp` as bound. */
  readonly url: string;
  /** The URL the server printed in its `listening on …` line (the canonical resource URL). */
  readonly announcedUrl: string;
  /** The canonical resource URL tokens must carry as `aud`. */
  readonly resource: string;
  /** `http://127.0.0.1:PORT` of the health/metrics listener, if enabled. */
  readonly managementUrl: string | undefined;
  readonly child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Everything the process wrote to stdout so far (must stay empty over HTTP). */
  stdout(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGKILL after `ms`). */
  stop(
    signal?: NodeJS.Signals,
    ms?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Options of {@link startHttpServer}. */
export interface StartHttpOptions {
  readonly env: Record<string, string>;
  /** Written to a temp file and passed as `--config`; `transport: http` and port 0 are filled in. */
  readonly config: Record<string, unknown>;
  readonly args?: readonly string[];
  /** The built bin to run (e.g. `servers/jira/dist/bin.js`). Default: {@link POSTGRES_BIN}. */
  readonly bin?: string;
}

/**
 * Spawns the built bin in HTTP mode on free ports (`http.port` and `http.management.port`
 * default to 0) and resolves once it logged `listening on …` (the pino line carries `resource`
 * and `management`).
 */
export async function startHttpServer(opts: StartHttpOptions): Promise<HttpServerProcess> {
  const http = (opts.config.http ?? {}) as Record<string, unknown>;
  const management = (http.management ?? {}) as Record<string, unknown>;
  const config = {
    ...opts.config,
    transport: 'http',
    http: { port: 0, ...http, management: { port: 0, ...management } },
  };
  const child = spawn(
    process.execPath,
    [opts.bin ?? POSTGRES_BIN, '--config', writeTempConfig(config), ...(opts.args ?? [])],
    {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in time:\n${stderr}`));
    }, 30_000);
    const check = () => {
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (typeof parsed.msg === 'string' && parsed.msg.includes(' listening on ')) {
            clearTimeout(timer);
            child.stderr?.off('data', check);
            resolve(parsed);
            return;
          }
        } catch {
          // a partial line
        }
      }
    };
    child.stderr?.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${stderr}`));
    });
  });
  // The log announces the canonical resource URL; `bound` is the address actually listened on
  // (they differ only when `http.publicUrl` names a proxy in front).
  const announced = /listening on (\S+)/.exec(String(listening.msg))?.[1] ?? '';
  const url = typeof listening.bound === 'string' ? listening.bound : announced;
  return {
    url,
    announcedUrl: announced,
    resource: String(listening.resource),
    managementUrl: typeof listening.management === 'string' ? listening.management : undefined,
    child,
    stderr: () => stderr,
    stdout: () => stdout,
    exited,
    async stop(signal = 'SIGTERM', ms = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** A port that was free a moment ago (listen on 0, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * The HAProxy configuration of the supported replica mode (packages/core/README.md "Several
 * replicas"): HTTP mode on `127.0.0.1:bindPort`, round-robin for new sessions, sticky on
 * `Mcp-Session-Id` (learned from the `initialize` response), health checks every 300 ms, and
 * redispatch of a request whose replica is down. `replicaUrls` are the replicas' bound URLs
 * (`http://127.0.0.1:PORT/mcp`); only their ports are used.
 */
export function haproxyConfig(bindPort: number, replicaUrls: readonly string[]): string {
  return `global
  maxconn 1024
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option redispatch
  retries 2
frontend mcp
  bind 127.0.0.1:${bindPort}
  default_backend replicas
backend replicas
  balance roundrobin
  stick-table type string len 64 size 100k expire 30m
  stick match req.hdr(mcp-session-id)
  stick store-response res.hdr(mcp-session-id)
${replicaUrls.map((url, i) => `  server r${i} 127.0.0.1:${new URL(url).port} check inter 300ms fall 2 rise 2`).join('\n')}
`;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

/** A complete HTTP response. */
export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** Options of {@link rawRequest}. */
export interface RawRequestOptions {
  readonly method?: string;
  /** Sent as given (including `Host`); `Host` defaults to the URL's host. */
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/**
 * One request on a fresh connection (no keep-alive pool), via node:http so every header —
 * `Host` included — is exactly what the test says.
 */
export function rawRequest(url: string, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let responded = false;
    const req = httpRequest(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => undefined);
        res.on('close', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', (err) => {
      // The server may close the connection before a large upload is fully written; the
      // response it already sent is what counts.
      if (!responded) reject(err);
    });
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** Headers of an MCP POST: JSON in, JSON or SSE out, the protocol version, optional token and session. */
export function mcpHeaders(
  opts: { token?: string; session?: string; extra?: Record<string, string> } = {},
): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': LATEST_PROTOCOL_VERSION,
    ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
    ...(opts.session ? { 'Mcp-Session-Id': opts.session } : {}),
    ...opts.extra,
  };
}

/** POSTs one JSON-RPC message (object or raw text) to `/mcp`. */
export function mcpPost(
  url: string,
  body: unknown,
  opts: { token?: string; session?: string; extra?: Record<string, string> } = {},
): Promise<RawResponse> {
  return rawRequest(url, {
    method: 'POST',
    headers: mcpHeaders(opts),
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The JSON-RPC messages of a response: a JSON body, or the `data:` events of an SSE body. */
export function rpcMessages(res: RawResponse): Record<string, unknown>[] {
  const type = String(res.headers['content-type'] ?? '');
  if (type.startsWith('text/event-stream')) {
    return res.text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  expect(type).toMatch(/^application\/json/);
  return [JSON.parse(res.text) as Record<string, unknown>];
}

/** The single JSON-RPC message of a response. */
export function rpcMessage(res: RawResponse): Record<string, unknown> {
  const all = rpcMessages(res);
  expect(all).toHaveLength(1);
  return all[0]!;
}

/** A JSON-RPC `initialize` request body. */
export function initializeBody(id: number | string = 1): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'raw-http-test', version: '1.0.0' },
    },
  };
}

/** Initializes a session over raw HTTP (initialize + notifications/initialized) and returns its id. */
export async function openSession(url: string, token?: string): Promise<string> {
  const init = await mcpPost(url, initializeBody(), token ? { token } : {});
  expect(init.status, init.text).toBe(200);
  const session = init.headers['mcp-session-id'];
  expect(typeof session).toBe('string');
  const notified = await mcpPost(
    url,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { ...(token ? { token } : {}), session: String(session) },
  );
  expect(notified.status, notified.text).toBe(202);
  return String(session);
}

/** A `tools/call` request body. */
export function toolCallBody(
  name: string,
  args: Record<string, unknown>,
  id: number | string = 2,
): Record<string, unknown> {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } };
}

/**
 * Asserts a response body is a small JSON document (or an SSE stream of JSON) and leaks nothing:
 * no HTML, no stack trace, no file path.
 */
export function expectSafeBody(res: RawResponse): void {
  const type = String(res.headers['content-type'] ?? '');
  if (res.text !== '') {
    expect(type).toMatch(/^(application\/json|text\/event-stream)/);
    if (type.startsWith('application/json')) expect(() => JSON.parse(res.text)).not.toThrow();
  }
  expect(res.text).not.toMatch(/<html|<!doctype|<body|<pre/i);
  expect(res.text).not.toMatch(/\n\s+at |\bat [\w.<>]+ \(|Error: .*\n/);
  expect(res.text).not.toMatch(/\/work\/|\/home\/|\/root\/|node_modules|file:\/\/|\.[jt]s:\d+/);
}

// ---------------------------------------------------------------------------------------------
// SDK client over Streamable HTTP

/** Connects the MCP SDK client over Streamable HTTP with the given extra headers. */
export async function connectHttpClient(
  url: string,
  headers: Record<string, string> = {},
  clientName = 'hardened-mcp-http-e2e',
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers },
  });
  const client = new Client({ name: clientName, version: '1.0.0' }, { capabilities: {} });
  await client.connect(transport);
  return { client, transport };
}

// ---------------------------------------------------------------------------------------------
// OAuth: keys, JWKS, tokens

/** An RS256 key pair generated in the test, with its public JWK. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Generates an RS256 key pair (`jose` `generateKeyPair`) and its public JWK with `kid`. */
export async function makeSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicKey, publicJwk };
}

/** Claims of a test token; `exp` defaults to 5 minutes from now. */
export interface TokenClaims {
  readonly sub: string;
  readonly iss: string;
  readonly aud: string | string[];
  readonly scope?: string;
  /** Seconds since the epoch. */
  readonly exp?: number;
  readonly [claim: string]: unknown;
}

/** Signs an RS256 JWT access token with `key` (header `kid` = the key's). */
export async function mintToken(
  key: SigningKey,
  claims: TokenClaims,
  /** `typ`: default `at+jwt` (RFC 9068); `null` leaves it out. */
  header: { kid?: string; typ?: string | null } = {},
): Promise<string> {
  const { sub, iss, aud, exp, ...rest } = claims;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...rest, client_id: 'test-client' })
    .setProtectedHeader({
      alg: 'RS256',
      kid: header.kid ?? key.kid,
      ...(header.typ === null ? {} : { typ: header.typ ?? 'at+jwt' }),
    })
    .setSubject(sub)
    .setIssuer(iss)
    .setAudience(aud)
    .setIssuedAt(now - 5)
    .setJti(randomBytes(8).toString('hex'))
    .setExpirationTime(exp ?? now + 300)
    .sign(key.privateKey);
}

/** base64url of a JSON value. */
export function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A local JWKS endpoint: every path under `/jwks/` serves the same key set; fetches are counted per path. */
export interface JwksServer {
  /** `http://127.0.0.1:PORT` (also used as the issuer). */
  readonly origin: string;
  /** The JWKS URL of a named path, so each server process's fetches can be told apart. */
  jwksUrl(name: string): string;
  /** Publishes another public key. */
  addKey(jwk: JWK): void;
  /** Times (ms) of the fetches of a named path. */
  fetches(name: string): readonly number[];
  close(): Promise<void>;
}

/** Starts a JWKS endpoint on 127.0.0.1 serving `{ keys }`. */
export async function startJwksServer(initial: readonly JWK[]): Promise<JwksServer> {
  const keys: JWK[] = [...initial];
  const log = new Map<string, number[]>();
  const server: Server = createServer((req, res) => {
    const m = /^\/jwks\/([a-z0-9-]+)$/.exec(req.url ?? '');
    if (req.method !== 'GET' || !m?.[1]) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    const times = log.get(m[1]) ?? [];
    times.push(Date.now());
    log.set(m[1], times);
    res
      .writeHead(200, { 'Content-Type': 'application/jwk-set+json' })
      .end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    origin,
    jwksUrl: (name) => `${origin}/jwks/${name}`,
    addKey: (jwk) => {
      keys.push(jwk);
    },
    fetches: (name) => [...(log.get(name) ?? [])],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Whether a Redis server answers `PING` at host:port within 1 s; the failure reason otherwise. */
export function redisPing(
  host = '127.0.0.1',
  port = 6379,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: { ok: true } | { ok: false; reason: string }) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(1000, () => done({ ok: false, reason: 'timed out' }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, reason: err.code ?? err.message }),
    );
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) =>
      done(
        d.toString().startsWith('+PONG')
          ? { ok: true }
          : { ok: false, reason: `unexpected reply ${JSON.stringify(d.toString().slice(0, 60))}` },
      ),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Raw sockets

/** A response read off a raw socket, and the socket (still open or not). */
export interface SocketResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Record<string, string>;
  readonly text: string;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
  readonly socket: import('node:net').Socket;
}

/**
 * Writes `head` (request line and header lines, as given: repeated or oddly spelled headers
 * included) and then `body` on a fresh TCP connection, and resolves once one complete response
 * (headers and a `Content-Length` body) has been read, even while the client is still writing.
 */
export function socketRequest(
  url: string,
  head: readonly string[],
  body?: string | Buffer,
): Promise<SocketResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let data = Buffer.alloc(0);
    let done = false;
    socket.on('error', (err) => {
      if (!done) reject(err);
    });
    socket.on('data', (d: Buffer) => {
      if (done) return;
      data = Buffer.concat([data, d]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = data.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim().toLowerCase();
        const value = line.slice(i + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      const length = Number(headers['content-length'] ?? 0);
      const rest = data.subarray(end + 4);
      if (rest.length < length) return;
      done = true;
      resolve({
        status: Number(lines[0]?.split(' ')[1]),
        headers,
        text: rest.subarray(0, length).toString('utf8'),
        closed,
        socket,
      });
    });
    socket.once('connect', () => {
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      if (body !== undefined) socket.write(body);
    });
  });
}
