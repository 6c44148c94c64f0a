/**
 * Fault tests of the audit trail on the built `hardened-mcp-postgres` bin, real PostgreSQL,
 * real MCP SDK clients: a full disk (a real tmpfs of 1 MiB, mounted here; when mounting is not
 * permitted these cases are skipped with a message and only the injected-ENOSPC unit tests in
 * packages/core cover them), the audit file replaced under the server, and kill -9 in a loop.
 * Each asserts that no call returned data without a complete audit record.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditRecord, verifyAuditFile } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttpClient, rawRequest, startHttpServer } from '../support/http.ts';
import { startPostgresServer, textOf } from '../support/server.ts';

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

/** Records in an audit file (complete lines only). */
function recordsIn(path: string): AuditRecord[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** The marker each call carries in its SQL, so its record can be found. */
const sqlFor = (marker: string) => `select '${marker}' as marker, count(*) from artist`;

/** True when the record of the call tagged `marker` is in the file, complete, as a success. */
function hasRecord(records: AuditRecord[], marker: string): boolean {
  return records.some(
    (r) =>
      r.outcome === 'success' &&
      JSON.stringify(r.arguments).includes(marker) &&
      r.tool === 'postgres_query',
  );
}

/** A result that carries rows (the marker comes back in the data). */
const returnedData = (result: unknown, marker: string) =>
  !(result as { isError?: boolean }).isError && textOf(result).includes(marker);

/** Mounts a tmpfs of `size` at a fresh directory; undefined when mounting is not permitted. */
function mountTmpfs(size: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-audit-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return dir;
}

function unmount(dir: string): void {
  spawnSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
}

/** Fills the file system holding `dir` completely (large writes, then byte by byte). */
async function fillDisk(dir: string): Promise<string> {
  const filler = join(dir, 'filler');
  const handle = await open(filler, 'w');
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x41);
      for (;;) {
        try {
          await handle.write(chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    await handle.close();
  }
  return filler;
}

const mountProbe = mountTmpfs('64k');
if (mountProbe) unmount(mountProbe);
else {
  process.stderr.write(
    'audit-faults: cannot mount a tmpfs here (not root?); the disk-full cases are skipped; ' +
      'the injected-ENOSPC unit tests in packages/core/src/audit cover the same paths\n',
  );
}

describe.skipIf(!mountProbe)('disk full (real tmpfs of 1 MiB)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mountTmpfs('1m') as string;
  });
  afterAll(() => {
    if (dir) unmount(dir);
  });

  it('stdio: calls fail closed while the disk is full and resume by themselves after', async () => {
    const auditFile = join(dir, 'stdio.jsonl');
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { audit: { stderr: false, file: auditFile }, log: { level: 'info' } },
    });
    const returned: string[] = [];
    const call = async (marker: string) => {
      const r = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: sqlFor(marker) },
      });
      if (returnedData(r, marker)) returned.push(marker);
      return r;
    };
    try {
      for (let i = 0; i < 3; i++) {
        const r = await call(`before-${i}`);
        expect(textOf(r)).toContain(`before-${i}`);
      }
      expect(returned).toHaveLength(3);
      const filler = await fillDisk(dir);
      // The audit file's last page may still have room for a few records (tmpfs allocates
      // pages); once one record does not fit, every call is refused until space returns.
      let refusedFrom = -1;
      for (let i = 0; i < 30; i++) {
        const r = await call(`full-${i}`);
        const refused = (r as { isError?: boolean }).isError === true;
        if (refusedFrom === -1 && refused) refusedFrom = i;
        if (refusedFrom !== -1) {
          expect(refused, JSON.stringify(r)).toBe(true);
          expect(textOf(r)).toMatch(/audit/);
          expect(textOf(r)).not.toContain(`full-${i}`);
        }
      }
      expect(refusedFrom).toBeGreaterThanOrEqual(0);
      const whileFull = [...returned];
      await rm(filler);
      // Self-resuming, no restart and no hand edit: the first call after space returns may be
      // refused by the pipeline's up-front health check (its record heals the log); then calls
      // answer again.
      const first = await call('after-0');
      if ((first as { isError?: boolean }).isError) await call('after-0');
      for (let i = 1; i < 3; i++) await call(`after-${i}`);
      expect(returned).toEqual([...whileFull, 'after-0', 'after-1', 'after-2']);
    } finally {
      await s.close();
    }
    const records = recordsIn(auditFile);
    for (const marker of returned) expect(hasRecord(records, marker), marker).toBe(true);
    expect(readFileSync(auditFile, 'utf8').endsWith('\n')).toBe(true);
    expect(await verifyAuditFile(auditFile)).toMatchObject({ ok: true });
  });

  it('HTTP: 20 concurrent calls while the disk fills: none returns data without a record', async () => {
    const auditFile = join(dir, 'http.jsonl');
    const s = await startHttpServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { audit: { stderr: false, file: auditFile }, log: { level: 'info' } },
    });
    const { client } = await connectHttpClient(s.url);
    const returned: string[] = [];
    const failed: string[] = [];
    try {
      const calls = Array.from({ length: 20 }, async (_, i) => {
        const marker = `concurrent-${i}`;
        const r = await client.callTool({
          name: 'postgres_query',
          arguments: { sql: sqlFor(marker) },
        });
        if (returnedData(r, marker)) returned.push(marker);
        else failed.push(marker);
      });
      const filling = fillDisk(dir);
      await Promise.all([...calls, filling]);
      const filler = await filling;
      // The disk is full now: whatever comes next must be refused, and readiness says so.
      // (The audit file's last tmpfs page may still hold a record or two.)
      let refused = false;
      for (let i = 0; i < 30 && !refused; i++) {
        const marker = `late-${i}`;
        const late = await client.callTool({
          name: 'postgres_query',
          arguments: { sql: sqlFor(marker) },
        });
        if (returnedData(late, marker)) returned.push(marker);
        else refused = true;
      }
      expect(refused).toBe(true);
      expect((await rawRequest(`${s.managementUrl}/readyz`)).status).toBe(503);
      await rm(filler);
      const again = await client.callTool({
        name: 'postgres_query',
        arguments: { sql: sqlFor('again') },
      });
      // The first call after space returns may be the one that heals the log; the next succeeds.
      const healed = returnedData(again, 'again')
        ? again
        : await client.callTool({
            name: 'postgres_query',
            arguments: { sql: sqlFor('again2') },
          });
      expect((healed as { isError?: boolean }).isError).toBeFalsy();
      expect((await rawRequest(`${s.managementUrl}/readyz`)).status).toBe(200);
    } finally {
      await client.close();
      await s.stop();
    }
    expect(returned.filter((m) => m.startsWith('concurrent')).length + failed.length).toBe(20);
    const records = recordsIn(auditFile);
    for (const marker of returned) expect(hasRecord(records, marker), marker).toBe(true);
    expect(await verifyAuditFile(auditFile)).toMatchObject({ ok: true });
  });
});

describe('audit file replaced under the server', () => {
  it('stay_closed (default): calls fail closed and /readyz is 503', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmcp-audit-replaced-'));
    const auditFile = join(dir, 'audit.jsonl');
    const s = await startHttpServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { audit: { stderr: false, file: auditFile }, log: { level: 'info' } },
    });
    const { client } = await connectHttpClient(s.url);
    try {
      const ok = await client.callTool({
        name: 'postgres_query',
        arguments: { sql: sqlFor('one') },
      });
      expect(returnedData(ok, 'one')).toBe(true);
      expect((await rawRequest(`${s.managementUrl}/readyz`)).status).toBe(200);
      renameSync(auditFile, `${auditFile}.stolen`);
      writeFileSync(auditFile, '', { mode: 0o600 });
      for (const marker of ['two', 'three']) {
        const r = await client.callTool({
          name: 'postgres_query',
          arguments: { sql: sqlFor(marker) },
        });
        expect(returnedData(r, marker)).toBe(false);
      }
      expect((await rawRequest(`${s.managementUrl}/readyz`)).status).toBe(503);
    } finally {
      await client.close();
      await s.stop();
    }
    // Nothing was written to the impostor file; the original kept its complete chain.
    expect(readFileSync(auditFile, 'utf8')).toBe('');
    expect(hasRecord(recordsIn(`${auditFile}.stolen`), 'one')).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reopen: one call refused, then a new file continues the chain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmcp-audit-reopen-'));
    const auditFile = join(dir, 'audit.jsonl');
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: {
        audit: { stderr: false, file: auditFile, onFileChange: 'reopen' },
        log: { level: 'info' },
      },
    });
    try {
      const one = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: sqlFor('one') },
      });
      expect(returnedData(one, 'one')).toBe(true);
      rmSync(auditFile);
      const two = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: sqlFor('two') },
      });
      expect(returnedData(two, 'two')).toBe(false);
      const three = await s.client.callTool({
        name: 'postgres_query',
        arguments: { sql: sqlFor('three') },
      });
      expect(returnedData(three, 'three')).toBe(true);
    } finally {
      await s.close();
    }
    const records = recordsIn(auditFile);
    expect(records[0]).toMatchObject({
      tool: 'audit:chain_continued',
      arguments: { reason: 'deleted' },
    });
    expect(hasRecord(records, 'three')).toBe(true);
    expect(await verifyAuditFile(auditFile)).toMatchObject({ ok: true, continuesFrom: { seq: 0 } });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('crash: kill -9 in a loop, then restart and verify', () => {
  it('every restart continues the chain by itself; every answered call has its record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hmcp-audit-crash-'));
    const auditFile = join(dir, 'audit.jsonl');
    const returned: string[] = [];
    for (let round = 0; round < 6; round++) {
      if (round === 3) {
        // A power cut mid-write (what kill -9 alone cannot produce on a local file system):
        // half a line at the end. The next start must cut it and record the cut.
        await appendFile(auditFile, '{"v":1,"time":"2026-01-01T00:00:00.000Z","audi');
      }
      const s = await startPostgresServer({
        env: { POSTGRES_URL: db.readUrl },
        config: {
          audit: { stderr: false, file: auditFile, durability: round % 2 ? 'fsync' : 'group' },
          log: { level: 'info' },
        },
      });
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < 8; i++) {
        const marker = `r${round}-c${i}`;
        inflight.push(
          s.client.callTool({ name: 'postgres_query', arguments: { sql: sqlFor(marker) } }).then(
            (r) => {
              if (returnedData(r, marker)) returned.push(marker);
            },
            () => {},
          ),
        );
      }
      // Let some calls complete, then kill without warning while others are in flight.
      await Promise.race([inflight[2], new Promise((r) => setTimeout(r, 2_000))]);
      process.kill(s.pid as number, 'SIGKILL');
      await Promise.allSettled(inflight);
      await s.close().catch(() => {});
    }
    // A last start proves the file is still accepted, then verify the whole chain.
    const s = await startPostgresServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { audit: { stderr: false, file: auditFile }, log: { level: 'info' } },
    });
    await s.close();
    const records = recordsIn(auditFile);
    expect(returned.length).toBeGreaterThan(0);
    for (const marker of returned) expect(hasRecord(records, marker), marker).toBe(true);
    expect(records.filter((r) => r.tool === 'audit:tail_truncated')).toHaveLength(1);
    expect(await verifyAuditFile(auditFile)).toMatchObject({ ok: true, records: records.length });
    expect(readdirSync(dir)).toEqual(['audit.jsonl']);
    rmSync(dir, { recursive: true, force: true });
    // Seven server starts: generous on a loaded machine (no timing is asserted).
  }, 300_000);
});
