/**
 * Credential rotation, black-box: the built `hardened-mcp-postgres` bin reads its read
 * credential from AWS Secrets Manager (the test kit's local stand-in, driven by the real AWS SDK
 * client with fake static credentials from the environment). The role's password is changed in
 * PostgreSQL and in the secret, the server's sessions are terminated, and the next call must
 * succeed after one refused login and one re-fetch, with no restart and no secret in any output.
 *
 * Needs password authentication: the embedded PostgreSQL (scram-sha-256). On a server that
 * trusts every login (no password checked) the rotation tests are skipped, saying so.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyAuditChain } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  type FakeSecretsManager,
  startFakeSecretsManager,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, waitFor } from '../support/audit.ts';
import { queryAs } from '../support/db.ts';
import {
  runBin,
  type ServerSession,
  startPostgresServer,
  textOf,
  writeTempConfig,
} from '../support/server.ts';

let server: TestPostgres;
let db: ChinookDatabase;
let sm: FakeSecretsManager;
/** Why the rotation tests cannot run here, if they cannot. */
let noPasswordAuth: string | undefined;

/** A statement as the test database's superuser. */
const adminQuery = <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
  queryAs<T>(db.adminUrl, sql, values);

/** Resolves to the SQLSTATE of a refused login with `url`, or `'ok'` when it is accepted. */
async function loginWith(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return 'ok';
  } catch (err) {
    return String((err as { code?: unknown }).code ?? 'error');
  } finally {
    await c.end().catch(() => undefined);
  }
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** Sets the read role's password in PostgreSQL. */
async function setReadPassword(password: string): Promise<void> {
  await adminQuery(
    `ALTER ROLE ${pg.escapeIdentifier(db.readRole)} PASSWORD ${pg.escapeLiteral(password)}`,
  );
}

/** Ends every session of the read role (the server's pooled connections) and waits until they are gone. */
async function terminateReadSessions(): Promise<void> {
  await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [
    db.readRole,
  ]);
  const until = Date.now() + 10_000;
  for (;;) {
    const [row] = await adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1',
      [db.readRole],
    );
    if (row?.n === 0) break;
    if (Date.now() > until) throw new Error('the read role still has sessions');
    await new Promise((r) => setTimeout(r, 50));
  }
  // Let the server's pool see its idle connections end.
  await new Promise((r) => setTimeout(r, 300));
}

const newPassword = () => randomBytes(24).toString('base64url');

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  sm = await startFakeSecretsManager();
  const wrong = await loginWith(withPassword(db.readUrl, 'Definitely-Wr0ng-Password'));
  if (wrong === 'ok') {
    noPasswordAuth = `the PostgreSQL server (${server.kind}, ${server.version}) accepts a wrong password (trust authentication): rotation cannot be observed; run on the embedded PostgreSQL (unset DATABASE_URL/HMCP_TEST_PG)`;
    console.warn(`postgres-rotation: rotation tests SKIPPED: ${noPasswordAuth}`);
  }
});
afterAll(async () => {
  await sm?.close();
  await db?.drop();
  await server?.stop();
});

describe('read credential from Secrets Manager, rotated while the server runs', () => {
  const secretId = 'hmcp/e2e/postgres-read';
  let s: ServerSession | undefined;
  let auditFile: string;
  /** Every secret value this suite used: none may appear in any output. */
  const secrets: string[] = [];
  const results: unknown[] = [];

  const query = async () => {
    const r = await s?.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT count(*) AS n FROM artist' },
    });
    results.push(r);
    return r as { isError?: boolean; content?: unknown; structuredContent?: unknown };
  };

  beforeAll(async () => {
    if (noPasswordAuth) return;
    secrets.push(db.readUrl, new URL(db.readUrl).password, sm.credentials.secretAccessKey);
    sm.putSecret(secretId, db.readUrl);
    auditFile = join(mkdtempSync(join(tmpdir(), 'hmcp-rotation-')), 'audit.jsonl');
    s = await startPostgresServer({
      env: { ...sm.env },
      config: {
        credentials: {
          read: { secretsManager: { secretId, endpoint: sm.endpoint, region: sm.region } },
        },
        audit: { stderr: true, file: auditFile },
      },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('starts with the secret and answers', async (ctx) => {
    if (noPasswordAuth) ctx.skip(noPasswordAuth);
    expect(sm.requestCount(secretId)).toBe(1);
    expect(sm.requests[0]).toMatchObject({
      target: 'secretsmanager.GetSecretValue',
      versionStage: 'AWSCURRENT',
      accessKeyId: sm.credentials.accessKeyId,
    });
    const r = await query();
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toMatch(/\b275\b/);
    // Over stdio the read credential's checks run after tools/list is answered (deferred client
    // checks); the call waited for them, so the line is there by now.
    expect(s?.stderr()).toMatch(/read credential connected/);
  });

  it('after a rotation, the next call fails upstream once, re-fetches and succeeds, without a restart', async (ctx) => {
    if (noPasswordAuth) ctx.skip(noPasswordAuth);
    const pid = s?.pid;
    expect(pid).toBeTypeOf('number');
    const oldUrl = db.readUrl;
    const password = newPassword();
    const newUrl = withPassword(oldUrl, password);
    secrets.push(password, newUrl);

    await setReadPassword(password);
    sm.putSecret(secretId, newUrl);
    await terminateReadSessions();
    expect(await loginWith(oldUrl)).toBe('28P01'); // the old password is dead

    const r = await query();
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(textOf(r)).toMatch(/\b275\b/);
    expect(sm.requestCount(secretId)).toBe(2); // exactly one re-fetch
    await waitFor(() => /fetched it again \(changed\) and retried/.test(s?.stderr() ?? ''));
    expect(s?.stderr()).toMatch(
      /the database refused the read credential \(secretsManager hmcp\/e2e\/postgres-read\) \(SQLSTATE 28P01\); fetched it again \(changed\) and retried the connection/,
    );
    // Same process, still running.
    expect(s?.pid).toBe(pid);
    expect(() => process.kill(pid as number, 0)).not.toThrow();

    // Later calls use the new value without fetching again.
    const again = await query();
    expect(again.isError).toBeFalsy();
    expect(sm.requestCount(secretId)).toBe(2);
  });

  it('a password changed before the secret: the call fails cleanly, the next one after the secret is updated works', async (ctx) => {
    if (noPasswordAuth) ctx.skip(noPasswordAuth);
    const before = sm.requestCount(secretId);
    const password = newPassword();
    const newUrl = withPassword(db.readUrl, password);
    secrets.push(password, newUrl);

    await setReadPassword(password); // the secret still holds the previous password
    await terminateReadSessions();
    const failed = await query();
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toMatch(/^upstream_unavailable: the database is unavailable/);
    expect(sm.requestCount(secretId)).toBe(before + 1);
    await waitFor(() => /fetched it again: unchanged, not retried/.test(s?.stderr() ?? ''));

    sm.putSecret(secretId, newUrl);
    // After a re-fetch that found the secret unchanged, the next one waits at least 1 s.
    await new Promise((r) => setTimeout(r, 1_100));
    const r = await query();
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(textOf(r)).toMatch(/\b275\b/);
    expect(sm.requestCount(secretId)).toBe(before + 2);
  });

  it('no secret value in stderr (log and audit), the audit file or any tool result', async (ctx) => {
    if (noPasswordAuth) ctx.skip(noPasswordAuth);
    expect(secrets.length).toBeGreaterThanOrEqual(7);
    await s?.close();
    const stderr = s?.stderr() ?? '';
    const audit = readFileSync(auditFile, 'utf8');
    const outputs = { stderr, audit, results: JSON.stringify(results) };
    for (const [where, text] of Object.entries(outputs)) {
      for (const secret of secrets) {
        expect(text.includes(secret), `a secret in ${where}`).toBe(false);
      }
    }
    const records = auditRecordsIn(stderr);
    expect(records.filter((r) => r.tool === 'postgres_query')).toHaveLength(5);
    const verdict = await verifyAuditChain(audit.split('\n').filter((l) => l !== ''));
    expect(verdict).toMatchObject({ ok: true, records: 5 });
  });
});

describe('startup with a secretsManager source', () => {
  it('an unknown secret refuses to start with one clean line', async () => {
    const cfg = writeTempConfig({
      credentials: {
        read: { secretsManager: { secretId: 'hmcp/e2e/missing', endpoint: sm.endpoint } },
      },
    });
    const r = await runBin({ ...sm.env }, ['--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'hardened-mcp-postgres: cannot fetch secretsManager hmcp/e2e/missing: ResourceNotFoundException (HTTP 400): no such secret or staging label\n',
    );
    expect(r.stderr).not.toContain(sm.credentials.secretAccessKey);
  });

  it('a plain-http endpoint off the loopback is refused by the configuration', async () => {
    const cfg = writeTempConfig({
      credentials: {
        read: { secretsManager: { secretId: 'x', endpoint: 'http://sm.example.com' } },
      },
    });
    const r = await runBin({ ...sm.env }, ['--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hardened-mcp-postgres: invalid configuration: credentials\.read/);
  });
});
