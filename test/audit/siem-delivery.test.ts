/**
 * Shipping audit records to a SIEM through the durable spool: a real HTTPS receiver (TLS with a
 * certificate made here by openssl) speaking the Splunk HEC and Elasticsearch bulk shapes goes
 * down (HTTP 503, then connection refused) and comes back; every record arrives once, in order,
 * and the receiver verifies the hash chain. A full spool fails closed (`required`) or drops and
 * counts (`best-effort`). The built server keeps serving calls while the SIEM is down for a real
 * minute, and every record then arrives once, in order, with the chain verified by the receiver.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditLog,
  AuditSpool,
  createHttpsJsonShipper,
  RemoteAuditSink,
  verifyAuditChain,
} from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgresServer } from '../support/server.ts';

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
  process.stderr.write('siem-delivery: skipped: the openssl command is needed for a certificate\n');
}

let dir: string;
let cert: string;
let key: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hmcp-siem-'));
  if (!openssl) return;
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
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  key = readFileSync(join(dir, 'key.pem'), 'utf8');
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const entry = (i: number) => ({
  server: { name: 'hardened-mcp-postgres', version: '0.1.0' },
  principal: `user-${i % 3}`,
  roles: ['analyst'],
  client: { name: 'siem-test' },
  transport: 'http' as const,
  tool: 'postgres_query',
  access: 'read' as const,
  arguments: { sql: `select ${i}` },
  decision: { result: 'allowed' as const },
  outcome: 'success' as const,
  durationMs: 1,
  redactions: {},
  correlationId: `c-${i}`,
});

/** A collector that can be switched between up, failing (503) and down (not listening). */
class Receiver {
  server: Server | undefined;
  port = 0;
  state: 'up' | 'failing' = 'up';
  readonly lines: string[] = [];
  readonly auth: string[] = [];
  constructor(readonly shape: 'splunk-hec' | 'elasticsearch-bulk') {}

  async start(): Promise<void> {
    this.server = createServer({ cert, key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.state === 'failing') {
          res.writeHead(503).end('{"text":"Server is busy"}');
          return;
        }
        this.auth.push(String(req.headers.authorization));
        const body = Buffer.concat(chunks).toString('utf8');
        if (this.shape === 'splunk-hec') {
          // Concatenated JSON objects, one per line as we send them.
          for (const l of body.split('\n').filter(Boolean)) {
            const ev = JSON.parse(l) as { event: unknown; time: number };
            this.lines.push(JSON.stringify(ev.event));
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"text":"Success","code":0}');
        } else {
          const parts = body.split('\n').filter(Boolean);
          const items: unknown[] = [];
          for (let i = 0; i < parts.length; i += 2) {
            const action = JSON.parse(parts[i] as string) as { create: { _id: string } };
            const doc = JSON.parse(parts[i + 1] as string) as { auditId: string };
            expect(action.create._id).toBe(doc.auditId);
            this.lines.push(parts[i + 1] as string);
            items.push({ create: { _id: doc.auditId, status: 201 } });
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: false, items }));
        }
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    s?.closeAllConnections();
    await new Promise<void>((resolve) => s?.close(() => resolve()) ?? resolve());
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!openssl).each(['splunk-hec', 'elasticsearch-bulk'] as const)(
  'HTTPS JSON sink (%s)',
  (shape) => {
    it('SIEM failing, then down, then back: every record once, in order, chain verified', async () => {
      const rx = new Receiver(shape);
      await rx.start();
      const spool = await AuditSpool.open(join(dir, `spool-${shape}`));
      const sink = new RemoteAuditSink({
        name: `siem-${shape}`,
        mode: 'required',
        spool,
        shipper: createHttpsJsonShipper({
          url: `https://127.0.0.1:${rx.port}/${shape === 'splunk-hec' ? 'services/collector/event' : '_bulk'}`,
          shape,
          token: 'test-token',
          ca: cert,
        }),
        batchRecords: 7,
        retryMinMs: 50,
        retryMaxMs: 400,
      });
      const log = await AuditLog.open({
        sinks: { file: join(dir, `audit-${shape}.jsonl`), extra: [sink] },
      });
      for (let i = 0; i < 20; i++) await log.record(entry(i));
      await sink.drained();
      expect(rx.lines).toHaveLength(20);

      rx.state = 'failing';
      for (let i = 20; i < 40; i++) await log.record(entry(i));
      await sleep(300);
      expect(sink.stats().failures).toBeGreaterThan(0);
      await rx.stop();
      for (let i = 40; i < 60; i++) await log.record(entry(i));
      await sleep(500);
      expect(rx.lines).toHaveLength(20);
      expect(sink.stats().spoolBytes).toBeGreaterThan(0);
      expect(sink.stats().lagSeconds).toBeGreaterThan(0);
      rx.state = 'up';
      await rx.start();
      await sink.drained();
      await log.close();

      expect(rx.lines).toHaveLength(60);
      expect(rx.lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([
        ...Array(60).keys(),
      ]);
      // The receiving side verifies the chain from what it got.
      expect(await verifyAuditChain(rx.lines)).toMatchObject({ ok: true, records: 60 });
      expect(new Set(rx.auth)).toEqual(
        new Set([shape === 'splunk-hec' ? 'Splunk test-token' : 'ApiKey test-token']),
      );
      expect(sink.stats()).toMatchObject({ delivered: 60, dropped: 0, spoolBytes: 0 });
      await rx.stop();
    });
  },
);

describe.skipIf(!openssl)('a full spool', () => {
  it('required: the record is refused (the call fails closed); best-effort: dropped and counted', async () => {
    const rx = new Receiver('splunk-hec');
    await rx.start();
    await rx.stop(); // down for the whole test
    const shipper = createHttpsJsonShipper({
      url: `https://127.0.0.1:${rx.port}/services/collector/event`,
      shape: 'splunk-hec',
      ca: cert,
    });
    const required = new RemoteAuditSink({
      name: 'req',
      mode: 'required',
      spool: await AuditSpool.open(join(dir, 'full-req'), { maxBytes: 4096 }),
      shipper,
      retryMinMs: 1000,
    });
    const bestEffort = new RemoteAuditSink({
      name: 'be',
      mode: 'best-effort',
      spool: await AuditSpool.open(join(dir, 'full-be'), { maxBytes: 4096 }),
      shipper,
      retryMinMs: 1000,
    });
    const log = await AuditLog.open({
      sinks: { file: join(dir, 'full.jsonl'), extra: [required, bestEffort] },
      onError: () => {},
    });
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      await log.record(entry(i)).catch((err: { code?: string }) => {
        expect(err.code).toBe('unavailable');
        refused += 1;
      });
    }
    expect(refused).toBeGreaterThan(0);
    expect(bestEffort.stats().dropped).toBeGreaterThan(0);
    expect(required.stats().spoolBytes).toBeLessThanOrEqual(4096);
    await log.close();
  });
});

describe.skipIf(!openssl)('restart with a non-empty spool', () => {
  it('delivers what an earlier process spooled, after the records it already delivered', async () => {
    const rx = new Receiver('elasticsearch-bulk');
    await rx.start();
    const spoolDir = join(dir, 'restart');
    const make = async () =>
      new RemoteAuditSink({
        name: 'r',
        mode: 'required',
        spool: await AuditSpool.open(spoolDir, { segmentBytes: 2048 }),
        shipper: createHttpsJsonShipper({
          url: `https://127.0.0.1:${rx.port}/_bulk`,
          shape: 'elasticsearch-bulk',
          ca: cert,
        }),
        retryMinMs: 50,
      });
    const file = join(dir, 'restart.jsonl');
    let sink = await make();
    let log = await AuditLog.open({ sinks: { file, extra: [sink] } });
    for (let i = 0; i < 10; i++) await log.record(entry(i));
    await sink.drained();
    rx.state = 'failing';
    for (let i = 10; i < 30; i++) await log.record(entry(i));
    await log.close(); // stops with 20 records spooled, several segments
    rx.state = 'up';
    sink = await make();
    log = await AuditLog.open({ sinks: { file, extra: [sink] } });
    await log.record(entry(30));
    await sink.drained();
    await log.close();
    expect(rx.lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([
      ...Array(31).keys(),
    ]);
    expect(await verifyAuditChain(rx.lines)).toMatchObject({ ok: true, records: 31 });
    await rx.stop();
  });
});

describe.skipIf(!openssl)('configured on the server (audit.remote)', () => {
  let pgServer: TestPostgres;
  let db: ChinookDatabase;
  beforeAll(async () => {
    pgServer = await startTestPostgres();
    db = await createChinookDatabase(pgServer);
  });
  afterAll(async () => {
    await db?.drop();
    await pgServer?.stop();
  });

  it('the built server ships every call to an HTTPS collector with its token from the environment', async () => {
    const rx = new Receiver('splunk-hec');
    await rx.start();
    const caFile = join(dir, 'cert.pem');
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl, HEC_TOKEN: 'hec-secret-value' },
      config: {
        audit: {
          stderr: false,
          file: join(dir, 'server-audit.jsonl'),
          remote: [
            {
              type: 'https-json',
              name: 'splunk',
              shape: 'splunk-hec',
              url: `https://127.0.0.1:${rx.port}/services/collector/event`,
              token: { env: 'HEC_TOKEN' },
              caFile,
            },
          ],
        },
      },
    });
    try {
      for (let i = 0; i < 3; i++) {
        await s.client.callTool({ name: 'postgres_list_schemas', arguments: {} });
      }
      const until = Date.now() + 15_000;
      while (rx.lines.length < 3 && Date.now() < until) await sleep(50);
    } finally {
      await s.close();
    }
    expect(rx.lines.length).toBe(3);
    expect(rx.lines.map((l) => (JSON.parse(l) as { tool: string }).tool)).toEqual([
      'postgres_list_schemas',
      'postgres_list_schemas',
      'postgres_list_schemas',
    ]);
    expect(await verifyAuditChain(rx.lines)).toMatchObject({ ok: true, records: 3 });
    expect(new Set(rx.auth)).toEqual(new Set(['Splunk hec-secret-value']));
    // The token never reaches the server's logs.
    expect(s.stderr()).not.toContain('hec-secret-value');
    // The spool sits beside the audit file by default.
    expect(readdirSync(join(dir, 'server-audit.jsonl.spool'))).toEqual(['splunk']);
    await rx.stop();
  });

  /** How long the SIEM is down in the minute-long outage test (a real minute, the only one). */
  const OUTAGE_MS = 61_000;

  it(
    'the SIEM down for a minute while the server keeps serving calls: every record once, in order, chain verified',
    async () => {
      const rx = new Receiver('elasticsearch-bulk');
      await rx.start();
      const auditFile = join(dir, 'outage-audit.jsonl');
      const s = await startPostgresServer({
        env: { POSTGRES_URL: db.readUrl, SIEM_TOKEN: 'siem-secret-value' },
        config: {
          // About two calls a second for a minute: above the default 120 per minute.
          rateLimit: { points: 100_000, durationSeconds: 60 },
          audit: {
            stderr: false,
            file: auditFile,
            remote: [
              {
                type: 'https-json',
                name: 'elastic',
                shape: 'elasticsearch-bulk',
                url: `https://127.0.0.1:${rx.port}/_bulk`,
                token: { env: 'SIEM_TOKEN' },
                caFile: join(dir, 'cert.pem'),
              },
            ],
          },
        },
      });
      /** Polls (no timing asserted) until `n` records arrived; the deadline only ends a hang. */
      const arrived = async (n: number, deadlineMs: number) => {
        const until = Date.now() + deadlineMs;
        while (rx.lines.length < n && Date.now() < until) await sleep(100);
        return rx.lines.length;
      };
      const call = async (i: number) => {
        const r = await s.client.callTool({
          name: 'postgres_query',
          arguments: { sql: 'SELECT $1::int AS i', params: [i] },
        });
        expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      };
      let calls = 0;
      try {
        for (; calls < 5; calls++) await call(calls);
        expect(await arrived(5, 30_000)).toBe(5);

        // Down: not listening (connections refused) for a real minute, calls keep being served.
        await rx.stop();
        const downSince = Date.now();
        while (Date.now() - downSince < OUTAGE_MS) {
          await call(calls);
          calls += 1;
          await sleep(500);
        }
        expect(rx.lines).toHaveLength(5);
        process.stderr.write(`siem outage: ${calls - 5} calls served while the SIEM was down\n`);
        // Everything since is in the spool beside the audit file.
        const spooled = readdirSync(join(`${auditFile}.spool`, 'elastic'));
        expect(spooled.length).toBeGreaterThan(0);

        // Back (same port): the spool drains in order. One more call after the return: delivery
        // is in order, so once its record is there, everything before it has been delivered.
        await rx.start();
        await call(calls);
        calls += 1;
        expect(await arrived(calls, 180_000)).toBe(calls);
      } finally {
        await s.close();
      }
      await rx.stop();

      const seqs = rx.lines.map((l) => (JSON.parse(l) as { seq: number }).seq);
      // Exactly once, in order: 0, 1, 2, … with nothing repeated or missing.
      expect(seqs).toEqual([...Array(calls).keys()]);
      expect(
        rx.lines.map((l) => (JSON.parse(l) as { arguments: { params?: unknown[] } }).arguments),
      ).toEqual(
        Array.from({ length: calls }, (_, i) => ({ sql: 'SELECT $1::int AS i', params: [i] })),
      );
      // The receiving side verifies the chain from what it got alone.
      expect(await verifyAuditChain(rx.lines)).toMatchObject({ ok: true, records: calls });
      // And what it got is what the server wrote (the file may end with a shutdown checkpoint).
      const fileLines = readFileSync(auditFile, 'utf8').trimEnd().split('\n');
      expect(rx.lines.map((l) => JSON.parse(l))).toEqual(
        fileLines.slice(0, calls).map((l) => JSON.parse(l)),
      );
      expect(new Set(rx.auth)).toEqual(new Set(['ApiKey siem-secret-value']));
      expect(s.stderr()).not.toContain('siem-secret-value');
    },
    OUTAGE_MS + 300_000,
  );
});
