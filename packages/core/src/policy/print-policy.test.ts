/**
 * `--print-policy` matches enforcement: a property test over generated configurations (mode,
 * tool allowlist, roles, approval settings, whether the write credential is present). For each,
 * the printed policy is computed without starting anything, then the same configuration is
 * assembled and every declared tool is called through the real pipeline as every printed role:
 * a tool printed as disabled is unknown, one printed as enabled is refused exactly when the role
 * is not printed for it, and a write printed with approval `required` asks for it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NO_APPROVAL_CHANNEL } from '../approval.js';
import { assemble, type ConnectorConfig } from '../assemble.js';
import { defineConfigSchema, parseConfig } from '../config.js';
import { defineConnector } from '../connector.js';
import { toolKit } from '../tool.js';
import { effectivePolicy, policyToMarkdown } from './print-policy.js';

const kit = toolKit<string>('demo');
const ok = async () => ({ kind: 'json' as const, data: { ok: true } });
const TOOLS = [
  kit.read({
    name: 'list_items',
    title: 'List',
    description: 'Lists.',
    output: 'json',
    input: z.strictObject({}),
    execute: ok,
  }),
  kit.read({
    name: 'get_item',
    title: 'Get',
    description: 'Gets.',
    output: 'json',
    input: z.strictObject({}),
    execute: ok,
  }),
  kit.write({
    name: 'put_item',
    title: 'Put',
    description: 'Puts.',
    output: 'json',
    input: z.strictObject({}),
    describeChange: () => 'put',
    execute: ok,
  }),
  kit.write({
    name: 'send_item',
    title: 'Send',
    description: 'Sends out.',
    egress: true,
    output: 'json',
    input: z.strictObject({}),
    describeChange: () => 'send',
    execute: ok,
  }),
];
const NAMES = TOOLS.map((t) => t.name);
const section = z.strictObject({ label: z.string().default('x') }).prefault({});
const demo = defineConnector<z.infer<typeof section>, string>({
  name: 'demo',
  bin: 'hardened-mcp-demo',
  version: '0.0.0',
  title: 'Demo',
  dataSource: 'the demo',
  configSection: section,
  defaultCredentials: { read: { env: 'DEMO_READ' }, write: { env: 'DEMO_WRITE' } },
  tools: () => ({ tools: TOOLS }),
  openClient: async (scope) => scope,
  closeClient: () => undefined,
});

const SCOPES = ['demo:read', 'demo:write'];
const configArb = fc.record({
  mode: fc.constantFrom('read-only', 'read-write'),
  allow: fc.option(fc.subarray(NAMES), { nil: undefined }),
  roles: fc.dictionary(
    fc.constantFrom('analyst', 'ops', 'auditor', 'reader', 'writer'),
    fc.subarray(SCOPES),
    {
      maxKeys: 4,
    },
  ),
  approvalOff: fc.subarray(['demo_put_item', 'demo_send_item']),
  // read tools configured to ask a human for every call
  approvalOn: fc.subarray(NAMES.filter((n) => !['demo_put_item', 'demo_send_item'].includes(n))),
  writeCredential: fc.boolean(),
});

describe('--print-policy matches what the running server enforces', () => {
  it('for generated configurations, every tool is enabled, callable and approved as printed', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, async (gen) => {
        const raw = {
          mode: gen.mode,
          roles: gen.roles,
          tools: {
            ...(gen.allow ? { allow: gen.allow } : {}),
            settings: Object.fromEntries([
              ...gen.approvalOff.map((t) => [t, { approval: 'none' }]),
              ...gen.approvalOn.map((t) => [t, { approval: 'required' }]),
            ]),
          },
          audit: {
            stderr: false,
            file: join(mkdtempSync(join(tmpdir(), 'hmcp-print-')), 'a.jsonl'),
          },
          log: { level: 'silent' },
        };
        const config = parseConfig(
          defineConfigSchema('demo', section),
          raw,
        ) as unknown as ConnectorConfig;
        const env = {
          DEMO_READ: 'read-secret-1',
          ...(gen.writeCredential ? { DEMO_WRITE: 'write-secret-1' } : {}),
        };
        const printed = await effectivePolicy(demo, config, env);
        const server = await assemble(demo, config, { env });
        try {
          const enabled = printed.tools.filter((t) => t.enabled).map((t) => t.name);
          expect([...server.pipeline.enabledTools].sort()).toEqual([...enabled].sort());
          for (const tool of printed.tools) {
            for (const role of Object.keys(printed.roles)) {
              const r = await server.pipeline.callTool({
                name: tool.name,
                arguments: {},
                identity: { principal: `p-${role}`, roles: [role], transport: 'stdio', client: {} },
                approval: NO_APPROVAL_CHANNEL,
                signal: new AbortController().signal,
              });
              if (!tool.enabled) {
                expect(r.kind).toBe('unknown_tool');
                continue;
              }
              const code =
                r.kind === 'result'
                  ? ((r.result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)
                      ?.code ?? 'ok')
                  : 'unknown';
              if (!tool.roles.includes(role)) expect(code).toBe('forbidden');
              else if (tool.approval === 'required') expect(code).toBe('approval_unavailable');
              else expect(code).toBe('ok');
            }
          }
        } finally {
          await server.close();
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);

  it('prints credential sources, never values, and the Markdown names every tool', async () => {
    const config = parseConfig(defineConfigSchema('demo', section), {
      mode: 'read-write',
    }) as unknown as ConnectorConfig;
    const env = { DEMO_READ: 'read-secret-value-1', DEMO_WRITE: 'write-secret-value-1' };
    const printed = await effectivePolicy(demo, config, env);
    const json = JSON.stringify(printed);
    expect(json).not.toContain('secret-value');
    expect(printed.credentials).toMatchObject({
      read: 'environment variable DEMO_READ',
      write: 'environment variable DEMO_WRITE',
      redis: 'environment variable REDIS_URL',
    });
    const md = policyToMarkdown(printed);
    for (const name of NAMES) expect(md).toContain(`| ${name} |`);
    expect(md).not.toContain('secret-value');
    expect(printed.tools.find((t) => t.name === 'demo_send_item')).toMatchObject({
      egress: true,
      approval: 'required',
    });
  });

  it('prints what a connector says each label key means, when it says', async () => {
    const labelled = defineConnector<z.infer<typeof section>, string>({
      ...demo,
      tools: () => ({
        tools: TOOLS,
        labelledPaths: [{ path: 'vault.secret', label: 'restricted', means: 'field | secret' }],
      }),
    });
    const config = parseConfig(defineConfigSchema('demo', section), {
      classification: { labels: { 'vault.secret': 'restricted' } },
    }) as unknown as ConnectorConfig;
    const printed = await effectivePolicy(labelled, config, {});
    expect(printed.labelledPaths).toEqual([
      { path: 'vault.secret', label: 'restricted', means: 'field | secret' },
    ]);
    expect(policyToMarkdown(printed)).toContain('| vault.secret | restricted | field \\| secret |');
    // A connector that says nothing prints the labels as configured, and no table.
    const plain = await effectivePolicy(demo, config, {});
    expect(plain.labelledPaths).toBeUndefined();
    expect(policyToMarkdown(plain)).not.toContain('| label key |');
  });
});
