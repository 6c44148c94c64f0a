import { readFile, stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StartupError } from '../errors.js';
import { AuditLog, AuditLogError, type AuditSinkFailure } from './audit-log.js';
import { type AuditEntry, GENESIS_HASH } from './audit-record.js';
import {
  canonicalJson,
  computeRecordHash,
  verifyAuditChain,
  verifyAuditFile,
} from './hash-chain.js';
import type { AuditSink } from './sinks.js';
import { captureStream, entry, memorySink, parse, tempDir } from './test-support/fixtures.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await tmp.cleanup();
});

describe('AuditLog.record', () => {
  it('stamps v, time, auditId, seq, prevHash and hash and chains records', async () => {
    const sink = memorySink();
    const log = await AuditLog.open({ sinks: { extra: [sink] } });
    const first = await log.record(entry(0));
    const second = await log.record(entry(1));
    await log.close();

    expect(first).toMatchObject({ v: 1, seq: 0, prevHash: GENESIS_HASH, principal: 'user-0' });
    expect(first.time).toMatch(ISO_MS_UTC);
    expect(first.auditId).toMatch(UUID);
    expect(first.hash).toBe(computeRecordHash(first));
    expect(second).toMatchObject({ seq: 1, prevHash: first.hash });
    expect(second.auditId).not.toBe(first.auditId);
    expect(log.lastHash).toBe(second.hash);
    expect(log.nextSeq).toBe(2);
    // The sink got exactly the returned records, as canonical JSON lines.
    expect(sink.lines).toEqual([canonicalJson(first), canonicalJson(second)]);
  });

  it('writes every field of the record shape', async () => {
    const sink = memorySink();
    const log = await AuditLog.open({ sinks: { extra: [sink] } });
    const e = entry(3, {
      decision: { result: 'denied', reason: 'forbidden', approval: 'declined' },
      outcome: 'denied',
      errorClass: 'forbidden',
      transport: 'http',
      access: 'write',
      session: {
        mcpSessionId: 's-1',
        requestId: 7,
        intent: 'close ticket 42',
        client: { name: 'c', version: '1' },
      },
      resultSha256: 'a'.repeat(64),
    });
    await log.record(e);
    await log.close();
    const written = parse(sink.lines[0]!);
    expect(Object.keys(written).sort()).toEqual(
      [
        'v',
        'time',
        'auditId',
        'seq',
        'prevHash',
        'hash',
        'server',
        'principal',
        'roles',
        'client',
        'transport',
        'tool',
        'access',
        'arguments',
        'decision',
        'outcome',
        'durationMs',
        'rows',
        'bytes',
        'truncated',
        'redactions',
        'errorClass',
        'correlationId',
        'session',
        'resultSha256',
      ].sort(),
    );
    expect(written).toMatchObject({
      ...e,
      v: 1,
      seq: 0,
    });
  });

  it('omits undefined optional fields and drops keys that are not part of the entry', async () => {
    const sink = memorySink();
    const log = await AuditLog.open({ sinks: { extra: [sink] } });
    const e = {
      ...entry(0, { rows: undefined, bytes: undefined, truncated: undefined }),
      client: { name: undefined, version: undefined },
      password: 'hunter2',
      decision: { result: 'allowed' as const, secret: 'hunter2' },
    };
    const rec = await log.record(e as AuditEntry);
    await log.close();
    const l = sink.lines[0]!;
    expect(l).not.toContain('hunter2');
    expect(l).not.toContain('"rows"');
    expect(l).not.toContain('"truncated"');
    expect(parse(l).client).toEqual({});
    expect(rec).not.toHaveProperty('password');
    expect(await verifyAuditChain(sink.lines)).toMatchObject({ ok: true, records: 1 });
  });

  it('snapshots arguments so the hash always matches the line', async () => {
    const sink = memorySink();
    const log = await AuditLog.open({ sinks: { extra: [sink] } });
    let calls = 0;
    const args = { sql: 'select 1', when: { toJSON: () => `call-${++calls}` } };
    const pending = log.record(entry(0, { arguments: args }));
    args.sql = 'mutated later';
    const rec = await pending;
    await log.close();
    expect(rec.arguments).toEqual({ sql: 'select 1', when: 'call-1' });
    expect(parse(sink.lines[0]!).arguments).toEqual({ sql: 'select 1', when: 'call-1' });
    expect(await verifyAuditChain(sink.lines)).toMatchObject({ ok: true, records: 1 });
  });

  it('refuses invalid entries without advancing the chain', async () => {
    const sink = memorySink();
    const log = await AuditLog.open({ sinks: { extra: [sink] } });
    await log.record(entry(0));
    const bad = { ...entry(1), transport: 'carrier-pigeon' } as unknown as AuditEntry;
    await expect(log.record(bad)).rejects.toThrow(AuditLogError);
    await expect(log.record(bad)).rejects.toThrow(/transport/);
    await expect(log.record(entry(1, { durationMs: -1 }))).rejects.toThrow(AuditLogError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(log.record(entry(1, { arguments: cyclic }))).rejects.toThrow(
      expect.objectContaining({ code: 'invalid_entry' }),
    );
    await expect(log.record(entry(1, { arguments: { n: 10n } }))).rejects.toThrow(
      expect.objectContaining({ code: 'invalid_entry' }),
    );
    expect(log.nextSeq).toBe(1);
    await log.record(entry(1));
    await log.close();
    expect(await verifyAuditChain(sink.lines)).toMatchObject({ ok: true, records: 2 });
  });

  it('refuses records after close; close is idempotent', async () => {
    const log = await AuditLog.open({ sinks: { extra: [memorySink()] } });
    await log.close();
    await log.close();
    await expect(log.record(entry(0))).rejects.toThrow(expect.objectContaining({ code: 'closed' }));
  });
});

describe('AuditLog.open', () => {
  it('refuses a configuration without any sink', async () => {
    await expect(AuditLog.open({ sinks: {} })).rejects.toBeInstanceOf(StartupError);
    await expect(AuditLog.open({ sinks: { stderr: false } })).rejects.toThrow(/no sink/);
  });

  it('writes the same records to the file and to stderr, never to stdout', async () => {
    const path = tmp.file('audit.jsonl');
    const { stream, text } = captureStream();
    const stdout = vi.spyOn(process.stdout, 'write');
    const log = await AuditLog.open({ sinks: { stderr: true, file: path }, stderrStream: stream });
    for (let i = 0; i < 3; i++) await log.record(entry(i));
    await log.close();
    const fileText = await readFile(path, 'utf8');
    expect(fileText.split('\n')).toHaveLength(4);
    expect(text()).toBe(fileText);
    expect(stdout).not.toHaveBeenCalled();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('continues the file chain across reopenings; stderr follows the same chain', async () => {
    const path = tmp.file('audit.jsonl');
    const one = await AuditLog.open({ sinks: { file: path } });
    await one.record(entry(0));
    const last = await one.record(entry(1));
    await one.close();

    const { stream, text } = captureStream();
    const two = await AuditLog.open({ sinks: { file: path, stderr: true }, stderrStream: stream });
    expect(two.nextSeq).toBe(2);
    expect(two.lastHash).toBe(last.hash);
    const next = await two.record(entry(2));
    await two.close();

    expect(next).toMatchObject({ seq: 2, prevHash: last.hash });
    expect(parse(text().trimEnd())).toEqual(JSON.parse(canonicalJson(next)));
    expect(await verifyAuditFile(path)).toMatchObject({
      ok: true,
      records: 3,
      lastHash: next.hash,
    });
  });

  it('starts a fresh chain at seq 0 without a file', async () => {
    const { stream, text } = captureStream();
    const log = await AuditLog.open({ sinks: { stderr: true }, stderrStream: stream });
    await log.record(entry(0));
    await log.flush();
    expect(parse(text().trimEnd())).toMatchObject({ seq: 0, prevHash: GENESIS_HASH });
    await log.close();
  });
});

describe('ordering', () => {
  it('keeps seq order for concurrent record() calls on every sink, even a slow one', async () => {
    const path = tmp.file('audit.jsonl');
    const slow = memorySink({ maxDelayMs: 3 });
    const log = await AuditLog.open({ sinks: { file: path, extra: [slow] } });
    const n = 100;
    const returned = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        await new Promise((r) => setTimeout(r, Math.random() * 10));
        return log.record(entry(i));
      }),
    );
    await log.flush();
    const fileLines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    expect(fileLines.map((l) => parse(l).seq)).toEqual([...Array(n).keys()]);
    expect(slow.lines).toEqual(fileLines);
    expect(new Set(returned.map((r) => r.seq)).size).toBe(n);
    expect(await verifyAuditFile(path)).toMatchObject({ ok: true, records: n });
    await log.close();
  });
});

describe('sink failures', () => {
  function failingSink(failFrom: number): AuditSink & { lines: string[] } {
    const lines: string[] = [];
    let calls = 0;
    return {
      lines,
      async write(l) {
        calls += 1;
        if (calls > failFrom) throw Object.assign(new Error('disk on fire'), { code: 'EIO' });
        lines.push(l);
      },
    };
  }

  it('reports each failed write to onError with the record position; others keep writing', async () => {
    const failures: Array<{ error: unknown; failure: AuditSinkFailure }> = [];
    const healthy = memorySink();
    const log = await AuditLog.open({
      sinks: { extra: [failingSink(1), healthy] },
      onError: (error, failure) => failures.push({ error, failure }),
    });
    await log.record(entry(0));
    // Without a file, the extra sinks are where the record lives: a failed write rejects.
    await expect(log.record(entry(1))).rejects.toMatchObject({ code: 'unavailable' });
    await expect(log.record(entry(2))).rejects.toMatchObject({ code: 'unavailable' });
    expect(failures.map((f) => f.failure)).toEqual([
      { sink: 'extra:0', operation: 'write', seq: 1, auditId: expect.any(String) },
      { sink: 'extra:0', operation: 'write', seq: 2, auditId: expect.any(String) },
    ]);
    expect(failures[0]!.error).toMatchObject({ code: 'EIO' });
    expect(log.healthy).toBe(false);
    expect(healthy.lines).toHaveLength(3);
    await log.close();
  });

  it('with failClosed, a failed secondary sink rejects the record; the next success heals', async () => {
    const onError = vi.fn();
    const path = tmp.file('audit.jsonl');
    const log = await AuditLog.open({
      sinks: { file: path, extra: [failingSink(1)] },
      onError,
      failClosed: true,
    });
    await log.record(entry(0));
    await expect(log.record(entry(1))).rejects.toMatchObject({ code: 'unavailable' });
    expect(onError).toHaveBeenCalledTimes(1);
    expect(log.healthy).toBe(false);
    await log.close();
    // Without failClosed, a secondary sink failure is reported but the durable file has it.
    const lenient = await AuditLog.open({
      sinks: { file: tmp.file('b.jsonl'), extra: [failingSink(0)] },
      onError,
    });
    await expect(lenient.record(entry(0))).resolves.toMatchObject({ seq: 0 });
    expect(lenient.healthy).toBe(true);
    await lenient.close();
  });

  it('without onError, failures become process warnings (never silent, never a crash)', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const log = await AuditLog.open({ sinks: { extra: [failingSink(0)] } });
    await log.record(entry(0)).catch(() => {});
    await log.close();
    expect(warn).toHaveBeenCalledWith(
      'audit sink "extra:0" write failed (record seq 0): EIO',
      expect.objectContaining({ code: 'HMCP_AUDIT_SINK' }),
    );
  });

  it('an onError that throws does not escape as an unhandled rejection', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const log = await AuditLog.open({
      sinks: { extra: [failingSink(0)] },
      onError: () => {
        throw new Error('logger broken');
      },
    });
    await expect(log.record(entry(0))).rejects.toMatchObject({ code: 'unavailable' });
    await log.close();
    expect(warn).toHaveBeenCalledWith('onError threw', expect.anything());
  });
});
