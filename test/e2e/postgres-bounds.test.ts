/**
 * Issue 10 §2 over stdio, against the built `hardened-mcp-postgres` bin and a real PostgreSQL
 * (embedded 18, or DATABASE_URL):
 *
 * - `postgres_explain` evaluates nothing from the client while planning: statements whose
 *   constants PostgreSQL would fold at plan time into an error (or a huge value) still get a
 *   plan, because every constant is planned as a parameter of a generic plan; honest statements
 *   keep their plans.
 * - Error messages carry no row data (issue 10 §1 bullet 4).
 * - The stdio transport answers an over-long line or a too-deep JSON message with a JSON-RPC
 *   error and keeps serving.
 */
import { spawn } from 'node:child_process';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POSTGRES_BIN,
  type ServerSession,
  startPostgresServer,
  textOf,
  writeTempConfig,
} from '../support/server.ts';

let server: TestPostgres;
let db: ChinookDatabase;
let s: ServerSession;

beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
  s = await startPostgresServer({ env: { POSTGRES_URL: db.readUrl } });
}, 180_000);

afterAll(async () => {
  await s?.close();
  await db?.drop();
  await server?.stop();
}, 60_000);

/** The top plan node of a `postgres_explain` result. */
function planOf(result: unknown): Record<string, unknown> | undefined {
  const data = (result as { structuredContent?: { plan?: unknown } }).structuredContent;
  const plan = (data?.plan ?? JSON.parse(textBetweenFences(textOf(result)) || 'null')?.plan) as
    | { Plan?: Record<string, unknown> }[]
    | undefined;
  return plan?.[0]?.Plan;
}

/** The JSON inside the untrusted-data fence of a text rendering, if any. */
function textBetweenFences(text: string): string {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  return start >= 0 && end > start ? text.slice(start, end + 1) : '';
}

describe('postgres_explain evaluates no client value while planning', () => {
  // Each of these fails (or allocates) during planning when constants are folded.
  const folded = [
    { name: 'division by zero folded', sql: 'SELECT 1 / 0 AS x' },
    { name: 'sqrt of a negative folded', sql: 'SELECT sqrt(-1) AS x' },
    { name: 'text to integer input at parse time', sql: "SELECT 'not a number'::int + 1 AS x" },
    { name: 'a 2 GB string folded', sql: "SELECT length(repeat('x', 2000000000)) AS x" },
    {
      name: 'a typed literal with an invalid value',
      sql: "SELECT date 'not a date' AS x FROM genre",
    },
    {
      name: 'huge arrays folded in a WHERE clause',
      sql: 'SELECT name FROM genre WHERE array_fill(1, ARRAY[300000000]) IS NOT NULL',
    },
    {
      name: 'a folded error inside a parameterized statement',
      sql: 'SELECT name FROM genre WHERE genre_id = $1 AND 1 / 0 = 1',
      params: [1],
    },
  ];
  it.each(folded)('$name: a plan, not an error', async (c) => {
    const r = await s.client.callTool({
      name: 'postgres_explain',
      arguments: { sql: c.sql, ...(c.params ? { params: c.params } : {}) },
    });
    expect(r.isError ?? false, textOf(r)).toBe(false);
    expect(planOf(r)?.['Node Type']).toBeTypeOf('string');
  });

  const honest = [
    { sql: 'SELECT * FROM track WHERE milliseconds > 300000 ORDER BY name LIMIT 5', node: 'Limit' },
    {
      sql: "SELECT count(*) FROM invoice WHERE invoice_date > date '2010-01-01'",
      node: 'Aggregate',
    },
    {
      sql: 'SELECT billing_country, sum(total) FROM invoice WHERE billing_country = $1 GROUP BY 1',
      params: ['Brazil'],
      node: 'Aggregate',
    },
    {
      sql: 'WITH t AS (SELECT genre_id, count(*) AS n FROM track GROUP BY 1) SELECT g.name, t.n FROM genre g JOIN t USING (genre_id) ORDER BY 2 DESC',
      node: 'Sort',
    },
  ];
  it.each(honest)('honest: $sql', async (c) => {
    const r = await s.client.callTool({
      name: 'postgres_explain',
      arguments: { sql: c.sql, ...(c.params ? { params: c.params } : {}) },
    });
    expect(r.isError ?? false, textOf(r)).toBe(false);
    expect(planOf(r)?.['Node Type']).toBe(c.node);
  });

  it('the server still serves queries afterwards', async () => {
    const r = await s.client.callTool({
      name: 'postgres_query',
      arguments: { sql: 'SELECT count(*) AS n FROM genre' },
    });
    expect(r.isError ?? false).toBe(false);
  });
});

describe('error messages carry no row data', () => {
  const cases = [
    { sql: 'SELECT email::int FROM customer ORDER BY customer_id', data: 'embraer' },
    {
      sql: "SELECT to_tsquery('simple', last_name || ' &') FROM customer ORDER BY customer_id",
      data: 'Gonçalves',
    },
    { sql: "SELECT (first_name || '\"')::json FROM customer ORDER BY customer_id", data: 'Luís' },
  ];
  it.each(cases)('$sql', async (c) => {
    const r = await s.client.callTool({ name: 'postgres_query', arguments: { sql: c.sql } });
    expect(r.isError).toBe(true);
    const text = textOf(r);
    expect(text).toMatch(/^upstream_error: /);
    // The message itself is fixed text: the data may appear only inside a fence, if at all.
    const message = text.split('\n')[0] ?? '';
    expect(message).not.toContain(c.data);
  });
});

describe('the stdio transport bounds line size and JSON depth', () => {
  /** Runs the bin with raw stdin/stdout, sends `lines`, and collects the JSON responses. */
  async function exchange(lines: (string | Buffer)[], expected: number): Promise<unknown[]> {
    const config = writeTempConfig({});
    const child = spawn(process.execPath, [POSTGRES_BIN, '--config', config], {
      env: { PATH: process.env.PATH ?? '', HOME: '/tmp', POSTGRES_URL: db.readUrl },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr.resume();
    const responses: unknown[] = [];
    let buffer = '';
    const done = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buffer += d.toString('utf8');
        let nl = buffer.indexOf('\n');
        while (nl >= 0) {
          responses.push(JSON.parse(buffer.slice(0, nl)));
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf('\n');
        }
        if (responses.length >= expected) resolve();
      });
      child.once('exit', (code) =>
        reject(new Error(`server exited (${code}) after ${responses.length} responses`)),
      );
    });
    for (const line of lines) child.stdin.write(line);
    try {
      await done;
    } finally {
      child.kill('SIGTERM');
    }
    return responses;
  }

  const init = `${JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'raw', version: '1' },
    },
  })}\n`;
  const initialized = `${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`;
  const list = (id: number) =>
    `${JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list', params: {} })}\n`;

  const hostile = [
    {
      name: 'a 9 MiB line',
      line: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"postgres_query","arguments":{"sql":"${'x'.repeat(9 * 1024 * 1024)}"}}}\n`,
      id: null,
    },
    {
      name: 'arrays nested 100,000 deep',
      line: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"postgres_query","arguments":{"sql":"SELECT 1","params":${'['.repeat(100_000)}${']'.repeat(100_000)}}}}\n`,
      id: 2,
    },
    {
      name: 'objects nested 1,000 deep',
      line: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":${'{"a":'.repeat(1_000)}1${'}'.repeat(1_000)}}\n`,
      id: 2,
    },
  ];
  it.each(hostile)(
    '$name: a JSON-RPC error, then the server keeps serving',
    async (c) => {
      const responses = (await exchange([init, initialized, c.line, list(3)], 3)) as {
        id: unknown;
        error?: { code: number };
        result?: { tools?: unknown[] };
      }[];
      const refusal = responses.find((r) => r.error !== undefined);
      expect(refusal?.error?.code).toBe(-32600);
      expect(refusal?.id).toBe(c.id);
      const listed = responses.find((r) => r.id === 3);
      expect(listed?.result?.tools?.length).toBeGreaterThan(0);
    },
    60_000,
  );
});
