/**
 * Deferred client checks (`assemble(…, { deferClientChecks: true })`, the stdio startup of
 * issue 14): the tool list is served while the connector's `openClient` runs, and fail closed
 * otherwise: a call waits for the checks and runs on the checked client only; a failed check
 * refuses the waiting call (with an audit record), runs no tool, and `started` rejects with the
 * connector's own error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NO_APPROVAL_CHANNEL } from './approval.js';
import { assemble, type ConnectorConfig, DEFERRED_CHECKS_FALLBACK_MS } from './assemble.js';
import { defineConfigSchema, parseConfig } from './config.js';
import { defineConnector } from './connector.js';
import { StartupError } from './errors.js';
import type { CallRequest } from './pipeline.js';
import { toolKit } from './tool.js';

/** A client the test hands out once its "checks" pass; tools record which client they ran on. */
interface FakeClient {
  readonly checked: true;
  readonly scope: string;
}

const section = z.strictObject({}).prefault({});
const kit = toolKit<FakeClient>('demo');

/** A connector whose `openClient` waits for the test to pass or fail its checks. */
function gatedConnector() {
  let pass!: () => void;
  let fail!: (err: Error) => void;
  const checks = new Promise<void>((resolve, reject) => {
    pass = resolve;
    fail = reject;
  });
  const ranOn: unknown[] = [];
  const opened: string[] = [];
  /** Scopes whose `openClient` began (before its checks settle). */
  const begun: string[] = [];
  const def = defineConnector<z.infer<typeof section>, FakeClient>({
    name: 'demo',
    bin: 'hardened-mcp-demo',
    version: '0.0.0',
    title: 'Demo',
    dataSource: 'the demo',
    configSection: section,
    defaultCredentials: { read: { env: 'DEMO_READ' } },
    tools: () => ({
      tools: [
        kit.read({
          name: 'get_item',
          title: 'Get',
          description: 'Gets.',
          output: 'json',
          input: z.strictObject({}),
          execute: async (_input, ctx) => {
            // Reading the client proves which one the call got (a stand-in throws here).
            ranOn.push(ctx.client.checked && ctx.client.scope);
            return { kind: 'json' as const, data: { ok: true } };
          },
        }),
      ],
    }),
    openClient: async (scope) => {
      begun.push(scope);
      await checks;
      opened.push(scope);
      return { checked: true, scope };
    },
    closeClient: () => undefined,
  });
  return { def, pass, fail, ranOn, opened, begun };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-deferred-'));
  dirs.push(dir);
  const auditFile = join(dir, 'audit.jsonl');
  const config = parseConfig(defineConfigSchema('demo', section), {
    audit: { stderr: false, file: auditFile },
  }) as unknown as ConnectorConfig;
  return { config, auditFile };
}

const call: CallRequest = {
  name: 'demo_get_item',
  arguments: {},
  identity: { principal: 'p', roles: ['reader'], transport: 'stdio', client: {} },
  approval: NO_APPROVAL_CHANNEL,
  signal: new AbortController().signal,
};

/** Whether `p` is still pending after the event loop has had a few turns. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return !settled;
}

describe('deferred client checks', () => {
  it('lists tools at once; a call waits for the checks, then runs on the checked client', async () => {
    const { def, pass, ranOn, opened } = gatedConnector();
    const { config } = setup();
    const server = await assemble(def, config, {
      env: { DEMO_READ: 'secret-read-value' },
      deferClientChecks: true,
    });
    try {
      expect(server.pipeline.listTools().map((t) => t.name)).toEqual(['demo_get_item']);
      const answer = server.pipeline.callTool(call);
      expect(await pending(answer)).toBe(true);
      expect(await pending(server.started)).toBe(true);
      expect(ranOn).toEqual([]);
      pass();
      const r = await answer;
      expect(r.kind === 'result' && r.result.isError).not.toBe(true);
      await server.started;
      expect(opened).toEqual(['read']);
      expect(ranOn).toEqual(['read']);
      // Once started, calls go straight through.
      const again = await server.pipeline.callTool(call);
      expect(again.kind === 'result' && again.result.isError).not.toBe(true);
      expect(ranOn).toEqual(['read', 'read']);
    } finally {
      pass();
      await server.close();
    }
  });

  it('a failed check refuses the waiting call with an audit record and runs nothing', async () => {
    const { def, fail, ranOn } = gatedConnector();
    const { config, auditFile } = setup();
    const server = await assemble(def, config, {
      env: { DEMO_READ: 'secret-read-value' },
      deferClientChecks: true,
    });
    const answer = server.pipeline.callTool(call);
    expect(await pending(answer)).toBe(true);
    const refusal = new StartupError('refusing to start: the read role is a superuser');
    fail(refusal);
    await expect(server.started).rejects.toBe(refusal);
    const r = await answer;
    // The refusal's record is in the audit file before its answer (durable before the answer).
    expect(readFileSync(auditFile, 'utf8')).toContain('"startup_checks_failed"');
    expect(r.kind).toBe('result');
    if (r.kind !== 'result') return;
    expect(r.result.isError).toBe(true);
    expect(r.result._meta?.['hardened-mcp/error']).toMatchObject({ code: 'upstream_unavailable' });
    // Later calls are refused the same way; no tool ever ran.
    const later = await server.pipeline.callTool(call);
    expect(later.kind === 'result' && later.result.isError).toBe(true);
    expect(ranOn).toEqual([]);
    await server.close();
    const records = readFileSync(auditFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(2);
    for (const rec of records)
      expect(rec).toMatchObject({
        tool: 'demo_get_item',
        outcome: 'denied',
        errorClass: 'upstream_unavailable',
        decision: { result: 'denied', reason: 'startup_checks_failed' },
      });
  });

  it('without the option, assemble waits for the checks and fails with their error', async () => {
    const { def, fail } = gatedConnector();
    const { config } = setup();
    const refusal = new StartupError('refusing to start: the read role is a superuser');
    const assembling = assemble(def, config, { env: { DEMO_READ: 'secret-read-value' } });
    expect(await pending(assembling)).toBe(true);
    fail(refusal);
    await expect(assembling).rejects.toBe(refusal);
  });
});

describe('when the deferred checks begin', () => {
  it('after the first tool list has been answered, not while it is answered', async () => {
    const { def, pass, begun } = gatedConnector();
    const { config } = setup();
    const server = await assemble(def, config, {
      env: { DEMO_READ: 'secret-read-value' },
      deferClientChecks: true,
    });
    try {
      expect(begun).toEqual([]);
      server.pipeline.listTools();
      // Not within the turn that answers the list (its answer is written first) …
      expect(begun).toEqual([]);
      await new Promise((r) => setImmediate(r));
      // … but on the next one.
      expect(begun).toEqual(['read']);
      pass();
      await server.started;
    } finally {
      pass();
      await server.close();
    }
  });

  it('at the first call, which then waits for them', async () => {
    const { def, pass, begun, ranOn } = gatedConnector();
    const { config } = setup();
    const server = await assemble(def, config, {
      env: { DEMO_READ: 'secret-read-value' },
      deferClientChecks: true,
    });
    try {
      const answer = server.pipeline.callTool(call);
      expect(await pending(answer)).toBe(true);
      expect(begun).toEqual(['read']);
      expect(ranOn).toEqual([]);
      pass();
      await answer;
      expect(ranOn).toEqual(['read']);
    } finally {
      pass();
      await server.close();
    }
  });

  it('with no request at all, after the fallback delay; a failure then still rejects started', async () => {
    const { def, fail, begun } = gatedConnector();
    const { config } = setup();
    const server = await assemble(def, config, {
      env: { DEMO_READ: 'secret-read-value' },
      deferClientChecks: true,
    });
    const refusal = new StartupError('refusing to start: the read role is a superuser');
    try {
      expect(begun).toEqual([]);
      await new Promise((r) => setTimeout(r, DEFERRED_CHECKS_FALLBACK_MS + 50));
      expect(begun).toEqual(['read']);
      fail(refusal);
      await expect(server.started).rejects.toBe(refusal);
    } finally {
      fail(refusal);
      await server.close();
    }
  });

  it('at close, so a failed check still decides the outcome', async () => {
    const { def, fail, begun } = gatedConnector();
    const { config } = setup();
    const server = await assemble(def, config, {
      env: { DEMO_READ: 'secret-read-value' },
      deferClientChecks: true,
    });
    const refusal = new StartupError('refusing to start: the read role is a superuser');
    const closing = server.close();
    await new Promise((r) => setImmediate(r));
    expect(begun).toEqual(['read']);
    fail(refusal);
    await closing;
    await expect(server.started).rejects.toBe(refusal);
  });
});
