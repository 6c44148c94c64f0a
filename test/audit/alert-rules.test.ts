/**
 * The shipped Prometheus alert rules (packages/core/deploy/alert-rules.yaml) only reference
 * metrics a running server exports: the built `hardened-mcp-postgres` in HTTP mode, real
 * PostgreSQL, its management listener's /metrics.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { rawRequest, startHttpServer } from '../support/http.ts';
import { REPO_ROOT } from '../support/server.ts';

const RULES = join(REPO_ROOT, 'packages', 'core', 'deploy', 'alert-rules.yaml');

type Rules = {
  groups: Array<{
    name: string;
    rules: Array<{ alert: string; expr: string; labels?: { severity?: string } }>;
  }>;
};

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

/** Metric names in a PromQL expression: our `hmcp_` prefix, histogram suffixes removed. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bhmcp_[a-z0-9_]+\b/g)].map((m) =>
    m[0].replace(/_(bucket|sum|count)$/, ''),
  );
}

describe('alert rules', () => {
  it('parse, carry a severity, and reference only metrics the server exports', async () => {
    const rules = parse(readFileSync(RULES, 'utf8')) as Rules;
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(10);
    for (const rule of all) {
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels?.severity);
    }
    const referenced = new Set(all.flatMap((r) => metricsIn(r.expr)));
    expect(referenced.size).toBeGreaterThan(5);

    const dir = mkdtempSync(join(tmpdir(), 'hmcp-alerts-'));
    const s = await startHttpServer({
      env: { POSTGRES_URL: db.readUrl },
      config: { audit: { stderr: false, file: join(dir, 'audit.jsonl') } },
    });
    try {
      await rawRequest(`${s.managementUrl}/readyz`);
      const res = await rawRequest(`${s.managementUrl}/metrics`);
      expect(res.status).toBe(200);
      const exported = new Set(
        [...res.text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string),
      );
      const missing = [...referenced].filter((name) => !exported.has(name));
      expect(missing, `metrics the rules use but the server does not export`).toEqual([]);
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
