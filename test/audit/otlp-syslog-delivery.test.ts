/**
 * The OTLP/HTTP and syslog-over-TLS audit sinks against real receivers in the test:
 * - an OTLP/HTTP endpoint that decodes the protobuf `ExportLogsServiceRequest` with the code
 *   protobufjs generated from the official opentelemetry-proto definitions (as shipped in
 *   `@opentelemetry/otlp-transformer` 0.57, aliased `otlp-proto-definitions`);
 * - a TLS syslog collector (certificate made here by openssl) that splits RFC 6587 octet-counted
 *   frames and parses each RFC 5424 message with `nsyslog-parser`.
 * Each goes down and comes back; every record arrives once, in order, and the chain verifies.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import {
  AuditLog,
  AuditSpool,
  createOtlpLogsShipper,
  createSyslogTlsShipper,
  RemoteAuditSink,
  verifyAuditChain,
} from '@hardened-mcp/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
type Decoded = {
  resourceLogs: Array<{
    resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
    scopeLogs: Array<{
      scope?: { name?: string };
      logRecords: Array<{
        timeUnixNano: { toString(): string };
        severityText?: string;
        body?: { stringValue?: string };
        attributes?: Array<{ key: string; value: { intValue?: unknown; stringValue?: string } }>;
      }>;
    }>;
  }>;
};
const otlp = require('otlp-proto-definitions/build/src/generated/root.js') as {
  opentelemetry: {
    proto: {
      collector: {
        logs: {
          v1: {
            ExportLogsServiceRequest: {
              decode(buf: Uint8Array): unknown;
              toObject(m: unknown): Decoded;
            };
            ExportLogsServiceResponse: { encode(m: object): { finish(): Uint8Array } };
          };
        };
      };
    };
  };
};
const { ExportLogsServiceRequest, ExportLogsServiceResponse } =
  otlp.opentelemetry.proto.collector.logs.v1;
/** `nsyslog-parser` exports the parse function itself. */
const parseSyslog = require('nsyslog-parser') as (line: string) => {
  version?: number;
  type?: string;
  facilityval?: number;
  appName?: string;
  messageid?: string;
  structuredData?: Array<Record<string, string>>;
  message: string;
};

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
  process.stderr.write('otlp-syslog-delivery: syslog case skipped: openssl is needed\n');
}

let dir: string;
let cert = '';
let key = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hmcp-otlp-syslog-'));
  if (!openssl) return;
  // biome-ignore format: one openssl invocation
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
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
  client: { name: 'otlp-test' },
  transport: 'http' as const,
  tool: 'postgres_query',
  access: 'read' as const,
  arguments: { sql: `select ${i}` },
  decision:
    i % 5 === 0
      ? { result: 'denied' as const, reason: 'forbidden' }
      : { result: 'allowed' as const },
  outcome: i % 5 === 0 ? ('denied' as const) : ('success' as const),
  durationMs: 1,
  redactions: {},
  correlationId: `c-${i}`,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seqs = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { seq: number }).seq);

describe('OTLP/HTTP logs sink', () => {
  it('collector down then back: every record once, in order, decoded from real OTLP protobuf', async () => {
    const lines: string[] = [];
    const severities: string[] = [];
    let contentTypes = new Set<string>();
    let up = true;
    let server: HttpServer | undefined;
    let port = 0;
    const start = async () => {
      server = createHttpServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (!up) {
            res.writeHead(503).end();
            return;
          }
          contentTypes.add(String(req.headers['content-type']));
          const msg = ExportLogsServiceRequest.toObject(
            ExportLogsServiceRequest.decode(Buffer.concat(chunks)),
          );
          for (const rl of msg.resourceLogs) {
            const service = rl.resource?.attributes?.find((a) => a.key === 'service.name');
            expect(service?.value.stringValue).toBe('hardened-mcp');
            for (const sl of rl.scopeLogs) {
              expect(sl.scope?.name).toBe('hardened-mcp.audit');
              for (const lr of sl.logRecords) {
                const body = lr.body?.stringValue ?? '';
                const rec = JSON.parse(body) as { seq: number; time: string };
                const seqAttr = lr.attributes?.find((a) => a.key === 'audit.seq');
                expect(Number(String(seqAttr?.value.intValue))).toBe(rec.seq);
                expect(BigInt(lr.timeUnixNano.toString())).toBe(
                  BigInt(Date.parse(rec.time)) * 1_000_000n,
                );
                severities.push(lr.severityText ?? '');
                lines.push(body);
              }
            }
          }
          res.writeHead(200, { 'content-type': 'application/x-protobuf' });
          res.end(Buffer.from(ExportLogsServiceResponse.encode({}).finish()));
        });
      });
      await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
      port = ((server as HttpServer | TlsServer).address() as AddressInfo).port;
    };
    const stop = async () => {
      const s = server;
      server = undefined;
      s?.closeAllConnections();
      await new Promise<void>((resolve) => s?.close(() => resolve()) ?? resolve());
    };
    await start();
    const sink = new RemoteAuditSink({
      name: 'otlp',
      mode: 'required',
      spool: await AuditSpool.open(join(dir, 'spool-otlp')),
      shipper: createOtlpLogsShipper({ url: `http://127.0.0.1:${port}/v1/logs`, timeoutMs: 1000 }),
      batchRecords: 9,
      retryMinMs: 50,
      retryMaxMs: 300,
    });
    const log = await AuditLog.open({ sinks: { file: join(dir, 'otlp.jsonl'), extra: [sink] } });
    for (let i = 0; i < 15; i++) await log.record(entry(i));
    await sink.drained();
    up = false;
    for (let i = 15; i < 30; i++) await log.record(entry(i));
    await sleep(300);
    await stop();
    for (let i = 30; i < 45; i++) await log.record(entry(i));
    await sleep(300);
    expect(lines.length).toBe(15);
    up = true;
    await start();
    await sink.drained();
    await log.close();
    await stop();
    expect(seqs(lines)).toEqual([...Array(45).keys()]);
    expect(await verifyAuditChain(lines)).toMatchObject({ ok: true, records: 45 });
    expect(severities.filter((s) => s === 'WARN')).toHaveLength(9);
    expect([...contentTypes]).toEqual(['application/x-protobuf']);
    contentTypes = new Set();
  });
});

describe.skipIf(!openssl)('syslog over TLS sink (RFC 5424, RFC 6587 octet counting)', () => {
  it('collector down then back: every record once, in order, chain verified', async () => {
    const messages: ReturnType<typeof parseSyslog>[] = [];
    let server: TlsServer | undefined;
    let port = 0;
    const start = async () => {
      server = createTlsServer({ cert, key }, (socket) => {
        let buf = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          for (;;) {
            const sp = buf.indexOf(0x20);
            if (sp === -1) break;
            const len = Number(buf.subarray(0, sp).toString('ascii'));
            expect(Number.isInteger(len) && len > 0).toBe(true);
            if (buf.length < sp + 1 + len) break;
            messages.push(parseSyslog(buf.subarray(sp + 1, sp + 1 + len).toString('utf8')));
            buf = buf.subarray(sp + 1 + len);
          }
        });
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
      port = ((server as HttpServer | TlsServer).address() as AddressInfo).port;
    };
    await start();
    const sockets = new Set<import('node:net').Socket>();
    server?.on('secureConnection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    const sink = new RemoteAuditSink({
      name: 'syslog',
      mode: 'required',
      spool: await AuditSpool.open(join(dir, 'spool-syslog')),
      shipper: createSyslogTlsShipper({ host: '127.0.0.1', port, ca: cert, timeoutMs: 1000 }),
      batchRecords: 6,
      retryMinMs: 50,
      retryMaxMs: 300,
    });
    const log = await AuditLog.open({ sinks: { file: join(dir, 'syslog.jsonl'), extra: [sink] } });
    for (let i = 0; i < 12; i++) await log.record(entry(i));
    await sink.drained();
    await sleep(100);
    expect(messages).toHaveLength(12);
    // Collector down: connections ended, port closed.
    for (const s of sockets) s.end();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await sleep(100);
    for (let i = 12; i < 24; i++) await log.record(entry(i));
    await sleep(400);
    expect(sink.stats().failures).toBeGreaterThan(0);
    await start();
    await sink.drained();
    await sleep(100);
    await log.close();
    await new Promise<void>((resolve) => server?.close(() => resolve()));

    const got = messages.map((m) => m.message);
    expect(seqs(got)).toEqual([...Array(24).keys()]);
    expect(await verifyAuditChain(got)).toMatchObject({ ok: true, records: 24 });
    expect(messages[0]).toMatchObject({
      type: 'RFC5424',
      version: 1,
      facilityval: 13,
      appName: 'hardened-mcp',
      messageid: 'audit',
    });
    expect(messages[3]?.structuredData?.[0]).toMatchObject({
      $id: 'audit@32473',
      seq: '3',
      hash: (JSON.parse(got[3] as string) as { hash: string }).hash,
    });
  });
});
