import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ApprovalChannel, NO_APPROVAL_CHANNEL } from '../approval.js';
import type { AuditEntry } from '../audit/index.js';
import { StartupError } from '../errors.js';
import type { Identity } from '../identity.js';
import { createLogger } from '../logger.js';
import { type CallResponse, createPipeline } from '../pipeline.js';
import { createMemoryRateLimiter } from '../rate-limit.js';
import { createRedactor } from '../redaction/index.js';
import { type Tool, toolKit } from '../tool.js';
import { clearanceOf, createAccessControl } from './access-control.js';
import { createPolicyEngine, type PolicyEngine } from './cedar-engine.js';
import { generateCedarSchema } from './cedar-schema.js';
import { createClassifier } from './labels.js';
import { classificationConfigSchema, policiesConfigSchema } from './policy-config.js';
import { createMemoryTaintStore } from './taint.js';

// Real Cedar (cedar-wasm) over tools declared like a connector's: a Folder resource with a
// department, a write tool, an egress tool.
const kit = toolKit<string>('notes');
const folderType = {
  type: 'Folder',
  attributes: { folder: 'String', department: 'String' },
} as const;
const folderOf = (f: string, departments: Record<string, string>) => ({
  id: f,
  attrs: { folder: f, department: departments[f] ?? '' },
});
const DEPARTMENTS = { hr: 'hr', sales: 'sales', vault: 'security' };
const executed: string[] = [];
let lastLimits: { maxRows: number; maxBytes: number } | undefined;
const tools: Tool<string>[] = [
  kit.read({
    name: 'read_folder',
    title: 'Read folder',
    description: 'Reads a folder.',
    output: 'json',
    input: z.strictObject({ folder: z.string().max(32) }),
    resource: { ...folderType, of: (i) => folderOf(i.folder, DEPARTMENTS) },
    async execute(input, ctx) {
      executed.push(`read:${input.folder}`);
      lastLimits = ctx.limits;
      return { kind: 'json', data: { folder: input.folder, items: [1, 2, 3] } };
    },
  }),
  kit.write({
    name: 'write_folder',
    title: 'Write folder',
    description: 'Writes a folder.',
    output: 'json',
    input: z.strictObject({ folder: z.string().max(32) }),
    resource: { ...folderType, of: (i) => folderOf(i.folder, DEPARTMENTS) },
    describeChange: (i) => `write ${i.folder}`,
    async execute(input) {
      executed.push(`write:${input.folder}`);
      return { kind: 'json', data: { ok: true } };
    },
  }),
  kit.read({
    name: 'query_folder',
    title: 'Query folder',
    description: 'Reads what its query names, classified while it runs (like postgres_query).',
    output: 'json',
    input: z.strictObject({ folder: z.string().max(32) }),
    async execute(input, ctx) {
      await ctx.classification?.classify([input.folder]);
      executed.push(`query:${input.folder}`);
      return { kind: 'json', data: { folder: input.folder } };
    },
  }),
  kit.write({
    name: 'post_message',
    title: 'Post',
    description: 'Posts out.',
    egress: true,
    output: 'json',
    input: z.strictObject({ text: z.string().max(100) }),
    describeChange: (i) => `post ${i.text}`,
    async execute() {
      executed.push('post');
      return { kind: 'json', data: { ok: true } };
    },
  }),
];

const EXAMPLES = resolve(import.meta.dirname, '../../policies/examples');
const exampleFiles = [
  'base.cedar',
  'department-isolation.cedar',
  'business-hours-writes.cedar',
  'restricted-needs-approval.cedar',
  'incident-responder.cedar',
].map((f) => join(EXAMPLES, f));

// Fixed instants (UTC): a Monday 10:00 inside the incident window, a Saturday, and a Monday after it.
const MON_10 = Date.parse('2026-12-07T10:00:00Z');
const SAT_10 = Date.parse('2026-12-05T10:00:00Z');
const LATER_MON_10 = Date.parse('2026-12-14T10:00:00Z');

const schema = generateCedarSchema(tools as Tool<unknown>[]);

function tempPolicy(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'hmcp-cedar-')), 'p.cedar');
  writeFileSync(file, text);
  return file;
}

interface Setup {
  readonly files?: readonly string[];
  readonly classification?: unknown;
  readonly now?: number;
  readonly approve?: boolean;
  readonly toolSettings?: Readonly<Record<string, { approval?: 'required' | 'none' }>>;
}

async function setup(opts: Setup = {}) {
  const engine: PolicyEngine | undefined = opts.files
    ? await createPolicyEngine({ files: opts.files, schema })
    : undefined;
  const classification = classificationConfigSchema.parse(opts.classification ?? {});
  const policies = policiesConfigSchema.parse({});
  const limits = { maxRows: 500, maxBytes: 256 * 1024 };
  let now = opts.now ?? MON_10;
  const access = createAccessControl({
    serverName: 'notes-server',
    classifier: createClassifier(classification.labels, classification.default),
    classification,
    policies,
    engine,
    taint: createMemoryTaintStore(3600),
    limits,
    now: () => now,
  });
  const entries: AuditEntry[] = [];
  const redactor = createRedactor();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const pipeline = createPipeline<string>({
    server: { name: 'notes', version: '0' },
    dataSource: 'the notes',
    tools,
    mode: 'read-write',
    toolSettings: {
      notes_write_folder: { approval: 'none' },
      notes_post_message: { approval: 'none' },
      ...opts.toolSettings,
    },
    roles: {
      reader: ['notes:read'],
      writer: ['notes:read', 'notes:write'],
      'incident-responder': ['notes:read'],
    },
    clients: { read: 'R', write: 'W' },
    limits,
    redactor,
    audit: { record: (e) => void entries.push(e) },
    rateLimiter: createMemoryRateLimiter({ points: 1e6, durationSeconds: 60 }),
    logger: createLogger('silent', redactor, sink),
    access,
  });
  const prompts: string[] = [];
  const approval: ApprovalChannel = {
    supported: true,
    async request(text) {
      prompts.push(text);
      return opts.approve === false ? 'declined' : 'approved';
    },
  };
  const call = async (
    name: string,
    args: unknown,
    who: Partial<Identity> = {},
    origin: { mcpSessionId?: string; meta?: unknown } = { mcpSessionId: 's1' },
    channel: ApprovalChannel = approval,
  ) => {
    executed.length = 0;
    const r = await pipeline.callTool({
      name: `notes_${name}`,
      arguments: args,
      identity: {
        principal: 'alice',
        roles: ['writer'],
        transport: 'http',
        client: {},
        attributes: { department: 'sales' },
        ...who,
      },
      approval: channel,
      signal: new AbortController().signal,
      origin,
    });
    return { r, entry: entries.at(-1) as AuditEntry, ran: [...executed] };
  };
  return { call, engine, prompts, setNow: (t: number) => (now = t) };
}

const code = (r: CallResponse) =>
  r.kind === 'result'
    ? ((r.result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code ?? 'ok')
    : 'unknown';

describe('Cedar policy step (real cedar-wasm)', () => {
  it('loads the shipped example policies against the generated schema', async () => {
    const engine = await createPolicyEngine({ files: exampleFiles, schema });
    expect(engine.policies.map((p) => p.id)).toEqual([
      'base-permit',
      'department-isolation',
      'business-hours-writes',
      'restricted-needs-approval',
      'incident-responder-window',
    ]);
  });

  it('a typo in a policy is a startup error naming it, not a silent deny', async () => {
    const file = tempPolicy(
      '@id("typo") forbid(principal, action, resource is Hmcp::Folder) when { resource.departmnt == "hr" };',
    );
    const err = await createPolicyEngine({ files: [file], schema }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(/typo: .*departmnt/);
    const badAction = tempPolicy(
      'permit(principal, action == Hmcp::Action::"notes_raed_folder", resource);',
    );
    await expect(createPolicyEngine({ files: [badAction], schema })).rejects.toThrow(StartupError);
    const syntax = tempPolicy('permit(principal, action resource);');
    await expect(createPolicyEngine({ files: [syntax], schema })).rejects.toThrow(/policy file/);
  });

  it('department isolation: the own department passes, another is refused with the policy id', async () => {
    const { call } = await setup({ files: exampleFiles });
    const own = await call('read_folder', { folder: 'sales' });
    expect(code(own.r)).toBe('ok');
    expect(own.ran).toEqual(['read:sales']);
    expect(own.entry.decision).toMatchObject({ result: 'allowed', policies: ['base-permit'] });
    const other = await call('read_folder', { folder: 'hr' });
    expect(code(other.r)).toBe('policy_denied');
    expect(other.ran).toEqual([]);
    expect(other.entry.decision).toMatchObject({
      result: 'denied',
      reason: 'policy_denied',
      policies: ['department-isolation'],
    });
  });

  it('writes only during business hours', async () => {
    const s = await setup({ files: exampleFiles, now: SAT_10 });
    const saturday = await s.call('write_folder', { folder: 'sales' });
    expect(code(saturday.r)).toBe('policy_denied');
    expect(saturday.entry.decision.policies).toEqual(['business-hours-writes']);
    expect(saturday.ran).toEqual([]);
    // Reads are not affected on Saturday.
    expect(code((await s.call('read_folder', { folder: 'sales' })).r)).toBe('ok');
    s.setNow(MON_10);
    const monday = await s.call('write_folder', { folder: 'sales' });
    expect(code(monday.r)).toBe('ok');
    expect(monday.ran).toEqual(['write:sales']);
  });

  it('incident-responder reads other departments only inside the window', async () => {
    const s = await setup({
      files: exampleFiles,
      classification: {
        labels: { vault: 'confidential' },
        clearance: { roles: { 'incident-responder': 'restricted' } },
      },
    });
    const responder = { roles: ['incident-responder'], attributes: { department: 'support' } };
    const inside = await s.call('read_folder', { folder: 'vault' }, responder);
    expect(code(inside.r)).toBe('ok');
    expect(inside.entry.classification).toEqual({ label: 'confidential' });
    s.setNow(LATER_MON_10);
    const after = await s.call('read_folder', { folder: 'vault' }, responder);
    expect(code(after.r)).toBe('policy_denied');
    expect([...(after.entry.decision.policies ?? [])].sort()).toEqual([
      'department-isolation',
      'incident-responder-window',
    ]);
    // Internal data stays readable for them outside the window (no department on `general`).
    expect(code((await s.call('read_folder', { folder: 'general' }, responder)).r)).toBe('ok');
  });

  it('restricted data needs approval even to read; a declined approval never runs the tool', async () => {
    const classification = {
      labels: { 'sales/payroll': 'restricted' },
      clearance: { roles: { writer: 'restricted' } },
      restricted: { approval: false }, // the Cedar policy alone asks here
    };
    const s = await setup({ files: exampleFiles, classification });
    const ok = await s.call('read_folder', { folder: 'sales/payroll' });
    expect(code(ok.r)).toBe('ok');
    expect(s.prompts.at(-1)).toMatch(/restricted-needs-approval/);
    expect(ok.entry.decision).toMatchObject({ approval: 'approved', policies: ['base-permit'] });
    expect(ok.entry.classification).toEqual({ label: 'restricted', paths: ['sales/payroll'] });
    const declined = await setup({ files: exampleFiles, classification, approve: false });
    const no = await declined.call('read_folder', { folder: 'sales/payroll' });
    expect(code(no.r)).toBe('approval_declined');
    expect(no.ran).toEqual([]);
    const noChannel = await s.call(
      'read_folder',
      { folder: 'sales/payroll' },
      {},
      {},
      NO_APPROVAL_CHANNEL,
    );
    expect(code(noChannel.r)).toBe('approval_unavailable');
    expect(noChannel.ran).toEqual([]);
  });

  it('SIGHUP reload: a valid set replaces the old one, an invalid one keeps it', async () => {
    const file = tempPolicy('@id("all") permit(principal, action, resource);');
    const s = await setup({ files: [file] });
    expect(code((await s.call('read_folder', { folder: 'hr' })).r)).toBe('ok');
    writeFileSync(
      file,
      '@id("all") permit(principal, action, resource);\n@id("no-hr") forbid(principal, action, resource is Hmcp::Folder) when { resource.folder == "hr" };',
    );
    expect(await s.engine?.reload()).toEqual({ ok: true, count: 2 });
    const refused = await s.call('read_folder', { folder: 'hr' });
    expect(refused.entry.decision.policies).toEqual(['no-hr']);
    writeFileSync(file, '@id("all") permit(principal, action, resource) when { principal.nope };');
    const rejected = await s.engine?.reload();
    expect(rejected).toMatchObject({ ok: false });
    expect((rejected as { reason: string }).reason).toMatch(/nope/);
    // The previous set is still in force.
    expect((await s.call('read_folder', { folder: 'hr' })).entry.decision.policies).toEqual([
      'no-hr',
    ]);
    expect(code((await s.call('read_folder', { folder: 'sales' })).r)).toBe('ok');
  });

  it('without a permit, Cedar denies (default deny) and says no policy permits it', async () => {
    const file = tempPolicy(
      '@id("reads") permit(principal, action in Hmcp::Action::"read", resource);',
    );
    const s = await setup({ files: [file] });
    const w = await s.call('write_folder', { folder: 'sales' });
    expect(code(w.r)).toBe('policy_denied');
    expect(w.r.kind === 'result' && JSON.stringify(w.r.result.content)).toMatch(
      /no policy permits/,
    );
  });
});

describe('classification', () => {
  it('refuses data above the clearance before execution; roles and claims (attributes) raise the clearance', async () => {
    const classification = { labels: { hr: 'confidential', 'hr/salaries': 'restricted' } };
    const s = await setup({ classification });
    const refused = await s.call('read_folder', { folder: 'hr' });
    expect(code(refused.r)).toBe('policy_denied');
    expect(refused.ran).toEqual([]);
    expect(refused.entry.classification).toEqual({ label: 'confidential' });
    const claimed = await s.call(
      'read_folder',
      { folder: 'hr' },
      { attributes: { clearance: 'confidential' } },
    );
    expect(code(claimed.r)).toBe('ok');
    // A bogus clearance claim is ignored.
    expect(
      code((await s.call('read_folder', { folder: 'hr' }, { attributes: { clearance: 'top' } })).r),
    ).toBe('policy_denied');
    // The most specific label wins: hr/salaries is restricted even for a confidential principal.
    expect(
      code(
        (
          await s.call(
            'read_folder',
            { folder: 'hr/salaries' },
            { attributes: { clearance: 'confidential' } },
          )
        ).r,
      ),
    ).toBe('policy_denied');
  });

  it('restricted data: approval for reads, smaller caps', async () => {
    const s = await setup({
      classification: {
        labels: { vault: 'restricted' },
        clearance: { roles: { writer: 'restricted' } },
        restricted: { maxRows: 2 },
      },
    });
    const r = await s.call('read_folder', { folder: 'vault' });
    expect(code(r.r)).toBe('ok');
    expect(s.prompts.at(-1)).toMatch(/restricted data: vault/);
    expect(r.entry.decision.approval).toBe('approved');
    expect(r.entry.classification).toEqual({ label: 'restricted', paths: ['vault'] });
    expect(lastLimits).toEqual({ maxRows: 2, maxBytes: 64 * 1024 });
    await s.call('read_folder', { folder: 'sales' });
    expect(lastLimits).toEqual({ maxRows: 500, maxBytes: 256 * 1024 });
  });

  it('restricted data found while the call runs is approved with its reason, even after an approval for the call alone', async () => {
    const classification = {
      labels: { vault: 'restricted' },
      clearance: { roles: { writer: 'restricted' } },
    };
    const settings: Setup['toolSettings'][] = [
      {},
      { notes_query_folder: { approval: 'required' } },
    ];
    for (const toolSettings of settings) {
      const s = await setup({ classification, toolSettings });
      const r = await s.call('query_folder', { folder: 'vault' });
      expect(code(r.r)).toBe('ok');
      expect(r.ran).toEqual(['query:vault']);
      // The human saw why: the restricted data, in the last prompt before the tool went on.
      expect(s.prompts.at(-1)).toMatch(/restricted data: vault/);
      expect(r.entry.classification).toEqual({ label: 'restricted', paths: ['vault'] });
    }
  });

  it('session taint: after confidential data, egress is refused in that session and allowed in a fresh one', async () => {
    const s = await setup({
      classification: { labels: { hr: 'confidential' }, clearance: { default: 'confidential' } },
    });
    expect(code((await s.call('post_message', { text: 'hello' })).r)).toBe('ok');
    expect(code((await s.call('read_folder', { folder: 'hr' })).r)).toBe('ok');
    const out = await s.call('post_message', { text: 'the hr data' });
    expect(code(out.r)).toBe('policy_denied');
    expect(out.ran).toEqual([]);
    expect(out.r.kind === 'result' && JSON.stringify(out.r.result.content)).toMatch(
      /confidential data \(hr\)/,
    );
    const fresh = await s.call('post_message', { text: 'hello' }, {}, { mcpSessionId: 's2' });
    expect(code(fresh.r)).toBe('ok');
    expect(fresh.ran).toEqual(['post']);
    // The same conversation id taints across sessions (and, with Redis, across servers).
    const conv = { 'io.hardened-mcp/conversation': 'conv-1' };
    await s.call('read_folder', { folder: 'hr' }, {}, { mcpSessionId: 's3', meta: conv });
    expect(
      code((await s.call('post_message', { text: 'x' }, {}, { mcpSessionId: 's4', meta: conv })).r),
    ).toBe('policy_denied');
  });

  it('taint with egress: approve asks a human, naming what was read', async () => {
    const s = await setup({
      classification: {
        labels: { hr: 'confidential' },
        clearance: { default: 'confidential' },
        taint: { egress: 'approve' },
      },
    });
    await s.call('read_folder', { folder: 'hr' });
    const out = await s.call('post_message', { text: 'x' });
    expect(code(out.r)).toBe('ok');
    expect(s.prompts.at(-1)).toMatch(/has received confidential data \(hr\)/);
  });
});

describe('clearanceOf', () => {
  const classification = classificationConfigSchema.parse({
    clearance: { default: 'public', roles: { analyst: 'internal', sec: 'restricted' } },
  });
  const claims = policiesConfigSchema.parse({}).claims;
  const who = (roles: string[], attributes?: Record<string, unknown>): Identity => ({
    principal: 'p',
    roles,
    transport: 'stdio',
    client: {},
    ...(attributes ? { attributes } : {}),
  });
  it('is the highest of the default, the roles and the clearance claim; junk claims are ignored', () => {
    expect(clearanceOf(who([]), classification, claims)).toBe('public');
    expect(clearanceOf(who(['analyst']), classification, claims)).toBe('internal');
    expect(clearanceOf(who(['analyst', 'sec']), classification, claims)).toBe('restricted');
    expect(
      clearanceOf(who(['analyst'], { clearance: 'confidential' }), classification, claims),
    ).toBe('confidential');
    expect(clearanceOf(who(['sec'], { clearance: 'public' }), classification, claims)).toBe(
      'restricted',
    );
    expect(clearanceOf(who([], { clearance: 'top-secret' }), classification, claims)).toBe(
      'public',
    );
    // Roles are own keys only: a role named like an Object.prototype member grants nothing.
    expect(clearanceOf(who(['constructor']), classification, claims)).toBe('public');
  });
});
