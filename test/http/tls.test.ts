/**
 * In-process TLS (`http.tls`): TLS 1.3 only. A certificate is made for the test with openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureVersion } from 'node:tls';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpServerProcess, startHttpServer } from '../support/http.ts';

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}
if (!openssl)
  console.warn('[tls] skipped: the openssl command is needed to make a test certificate');

let pg: TestPostgres;
let db: ChinookDatabase;
let server: HttpServerProcess;
let cert: string;

/** One HTTPS POST; resolves the negotiated protocol and status, or rejects on a TLS failure. */
function post(
  url: string,
  opts: { minVersion?: SecureVersion; maxVersion?: SecureVersion },
): Promise<{ status: number; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: cert,
        servername: 'localhost',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          // The Host check includes the port (a Host without one means 443 on https).
          host: `localhost:${new URL(url).port}`,
        },
        ...opts,
      },
      (res) => {
        const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol() ?? '';
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, protocol }));
      },
    );
    req.on('error', reject);
    req.end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'tls', version: '1' },
        },
      }),
    );
  });
}

describe.skipIf(!openssl)('in-process TLS', () => {
  beforeAll(async () => {
    pg = await startTestPostgres();
    db = await createChinookDatabase(pg);
    const dir = mkdtempSync(join(tmpdir(), 'hmcp-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = await startHttpServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        http: {
          tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') },
          management: { enabled: false },
        },
      },
    });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    await pg?.stop();
  });

  it('listens on https and negotiates TLS 1.3', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(server.resource).toBe(server.url);
    const r = await post(server.url, {});
    expect(r).toEqual({ status: 200, protocol: 'TLSv1.3' });
  });

  it('refuses a client that offers at most TLS 1.2', async () => {
    await expect(post(server.url, { maxVersion: 'TLSv1.2' })).rejects.toThrow(
      /protocol version|alert|handshake/i,
    );
  });
});
