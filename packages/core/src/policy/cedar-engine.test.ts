import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Tool, toolKit } from '../tool.js';
import { type CedarDecision, type CedarRequest, createPolicyEngine } from './cedar-engine.js';
import { generateCedarSchema } from './cedar-schema.js';

// The sliced, trimmed engine against the reference (whole request, whole set, Cedar checking the
// request against the schema): identical decisions, determining and errored policies.
const kit = toolKit<string>('notes');
const folder = { type: 'Folder', attributes: { folder: 'String', department: 'String' } } as const;
const table = {
  type: 'Table',
  attributes: { schema: 'String', tags: 'StringSet', rows: 'Long', shared: 'Boolean' },
} as const;
const json = { output: 'json' as const, input: z.strictObject({}) };
const execute = async () => ({ kind: 'json' as const, data: {} });
const of = () => ({ id: 'x' });
const tools: Tool<string>[] = [
  kit.read({
    name: 'read_folder',
    title: 'R',
    description: 'R.',
    ...json,
    execute,
    resource: { ...folder, of },
  }),
  kit.write({
    name: 'write_folder',
    title: 'W',
    description: 'W.',
    ...json,
    execute,
    describeChange: () => 'w',
    resource: { ...folder, of },
  }),
  kit.write({
    name: 'post_message',
    title: 'P',
    description: 'P.',
    ...json,
    execute,
    describeChange: () => 'p',
    egress: true,
  }),
  kit.read({
    name: 'query_table',
    title: 'Q',
    description: 'Q.',
    ...json,
    execute,
    resource: { ...table, of },
  }),
  kit.write({
    name: 'archive',
    title: 'A',
    description: 'A.',
    ...json,
    execute,
    describeChange: () => 'a',
    resource: { type: 'Archive', attributes: { department: 'String' }, of },
  }),
  kit.write({
    name: 'drop_table',
    title: 'D',
    description: 'D.',
    ...json,
    execute,
    describeChange: () => 'd',
    resource: { ...table, of },
  }),
];
const schema = generateCedarSchema(tools as Tool<unknown>[]);

const EXAMPLES = resolve(import.meta.dirname, '../../policies/examples');
const examples = [
  'base.cedar',
  'department-isolation.cedar',
  'business-hours-writes.cedar',
  'restricted-needs-approval.cedar',
  'incident-responder.cedar',
].map((f) => join(EXAMPLES, f));

/** Every scope form, conditions over every attribute kind, errors, approval, whole records. */
const POLICIES = [
  `@id("alice") permit(principal == Hmcp::Principal::"alice", action, resource);`,
  `@id("drop-admin") forbid(principal, action == Hmcp::Action::"notes_drop_table", resource) unless { principal in Hmcp::Role::"admin" };`,
  `@id("tainted-writes") forbid(principal, action in [Hmcp::Action::"notes_write_folder", Hmcp::Action::"notes_post_message"], resource) when { context.tainted };`,
  `@id("egress-confidential") forbid(principal, action in Hmcp::Action::"egress", resource) when { context.classification >= 2 };`,
  `@id("contractor-tables") forbid(principal in Hmcp::Role::"contractor", action, resource is Hmcp::Table) when { resource.shared == false };`,
  `@id("suspended") forbid(principal is Hmcp::Principal in Hmcp::Role::"suspended", action, resource);`,
  `@id("payroll") forbid(principal, action, resource == Hmcp::Table::"public.payroll") unless { principal.department == "hr" };`,
  `@id("vault") forbid(principal, action, resource in Hmcp::Folder::"vault") unless { principal.clearance >= 3 };`,
  `@id("server-curl") forbid(principal, action, resource is Hmcp::Server) when { context.transport == "http" && context.client like "*curl*" };`,
  `@id("time-record") forbid(principal, action == Hmcp::Action::"notes_read_folder", resource) when { context.time == {"epoch": 1796000000, "hour": 3, "minute": 7, "weekday": 2} };`,
  `@id("has-label") forbid(principal, action, resource) when { context has label && context.label == "restricted" && principal.groups.isEmpty() };`,
  `@id("literal-attr") forbid(principal, action, resource is Hmcp::Table) when { Hmcp::Table::"public.orders".rows > 1000 && resource == Hmcp::Table::"public.orders" };`,
  `@id("action-body") forbid(principal, action, resource) when { action in Hmcp::Action::"write" && principal.groups.contains("readonly") };`,
  `@id("action-literal") forbid(principal, action == Hmcp::Action::"notes_post_message", resource) when { Hmcp::Action::"notes_drop_table" in Hmcp::Action::"write" && principal.department == "temp" };`,
  `@id("overflow") forbid(principal, action, resource is Hmcp::Table) when { resource.rows * 4611686018427387904 > 0 };`,
  `@id("if-record") forbid(principal, action, resource is Hmcp::Table) when { (if context.approval == "approved" then context.time else {"epoch": 0, "hour": 25, "minute": 0, "weekday": 9}).hour == 3 };`,
  `@id("approve-table-writes") @approval("required") forbid(principal, action in Hmcp::Action::"write", resource is Hmcp::Table) unless { context.approval == "approved" };`,
  `@id("pii-tags") forbid(principal, action, resource is Hmcp::Table) when { resource.tags.containsAny(["pii", "secret"]) && !principal.roles.contains("dpo") };`,
  `@id("sunday") forbid(principal, action, resource) when { context.time.weekday == 0 && principal.clearanceLabel != "restricted" };`,
  `@id("all-but-restricted") permit(principal, action, resource) when { context.classification < 3 };`,
  `@id("archive-r7") forbid(principal, action == Hmcp::Action::"notes_archive", resource) when { principal in Hmcp::Role::"r7" };`,
  `@id("context-whole") forbid(principal, action == Hmcp::Action::"notes_archive", resource) when { {"a": context}.a.client like "*claude*" && principal.department == "d3" };`,
  `@id("contractor-permit") permit(principal in Hmcp::Role::"contractor", action in Hmcp::Action::"read", resource);`,
  `@id("schema-pii") forbid(principal, action, resource is Hmcp::Table) when { resource.schema == "pii" && !principal.groups.contains("ops") };`,
  `@id("schema-sales-reversed") forbid(principal, action in Hmcp::Action::"write", resource is Hmcp::Table) when { "sales" == resource.schema } unless { principal.department == "sales" };`,
  `@id("rows-long") forbid(principal, action, resource is Hmcp::Table) when { resource.rows == 5000 && (context.time.hour < 7 || resource.tags.contains("ops")) };`,
  `@id("shared-bool") forbid(principal == Hmcp::Principal::"carol", action, resource is Hmcp::Table) when { true == resource.shared && principal.clearance < 2 };`,
  `@id("guard-not-first") forbid(principal, action, resource is Hmcp::Table) when { principal.clearance < 1 } when { resource.schema == "sales" };`,
  `@id("guard-second") forbid(principal, action, resource is Hmcp::Table) when { resource.rows * 4611686018427387904 > 0 && resource.schema == "pii" };`,
  `@id("guard-unless") forbid(principal, action, resource is Hmcp::Table) unless { resource.schema == "public" && context.approval == "approved" };`,
  `@id("bob-folders") permit(principal == Hmcp::Principal::"bob", action, resource == Hmcp::Folder::"vault") when { resource.department == "hr" && principal.clearance >= 3 };`,
  ...Array.from({ length: 15 }, (_, i) => [
    `@id("role-r${i}") forbid(principal in Hmcp::Role::"r${i}", action in Hmcp::Action::"read", resource) when { context.time.hour < ${i} };`,
    `@id("dept-d${i}") forbid(principal, action, resource is Hmcp::Folder) when { resource.department == "d${i}" && principal.department != "d${i}" };`,
  ]).flat(),
].join('\n');

function tempPolicy(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'hmcp-cedar-')), 'p.cedar');
  writeFileSync(file, text);
  return file;
}

const ROLES = [
  'reader',
  'admin',
  'contractor',
  'suspended',
  'dpo',
  'incident-responder',
  'r1',
  'r7',
  'r14',
];
const DEPTS = ['', 'hr', 'sales', 'temp', 'd0', 'd3', 'd9'];
const LABELS = ['public', 'internal', 'confidential', 'restricted'] as const;
const ACTIONS = tools.map((t) => t.name);

/** A request as the access step builds it, optionally malformed the ways a connector could. */
const requestArb = fc
  .record({
    action: fc.constantFrom(...ACTIONS),
    principal: fc.constantFrom('alice', 'bob', 'carol'),
    roles: fc.subarray(ROLES, { maxLength: 4 }),
    groups: fc.subarray(['readonly', 'ops'], {}),
    department: fc.constantFrom(...DEPTS),
    clearance: fc.integer({ min: 0, max: 3 }),
    folderId: fc.constantFrom('hr', 'vault', 'sales', 'misc'),
    tableId: fc.constantFrom('public.payroll', 'public.orders', 'public.customer'),
    tableSchema: fc.constantFrom('public', 'sales', 'pii'),
    resDept: fc.constantFrom(...DEPTS),
    tags: fc.subarray(['pii', 'secret', 'ops'], {}),
    rows: fc.constantFrom(0, 1, 2, 5000),
    shared: fc.boolean(),
    resLabel: fc.integer({ min: 0, max: 3 }),
    epoch: fc.constantFrom(1796000000, 1796083200, 1796400000, 1796688000),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.constantFrom(0, 7, 59),
    weekday: fc.integer({ min: 0, max: 6 }),
    transport: fc.constantFrom('stdio', 'http'),
    client: fc.constantFrom('', 'curl/8', 'claude'),
    approval: fc.constantFrom('none', 'approved'),
    tainted: fc.boolean(),
    malform: fc.constantFrom(
      ...Array<string>(12).fill('none'),
      'attr-type',
      'attr-missing',
      'attr-extra',
      'float',
      'parent-type',
      'dup-same',
      'dup-different',
      'unknown-action',
      'ctx-missing',
      'other-resource-type',
      'resource-absent',
    ),
  })
  .map((r): CedarRequest => {
    const tool = tools.find((t) => t.name === r.action) as Tool<string>;
    const resType = tool.resource?.type ?? 'Server';
    const label = LABELS[r.resLabel] as string;
    const attrs: Record<string, unknown> =
      resType === 'Folder'
        ? { folder: r.folderId, department: r.resDept }
        : resType === 'Table'
          ? { schema: r.tableSchema, tags: r.tags, rows: r.rows, shared: r.shared }
          : resType === 'Archive'
            ? { department: r.resDept }
            : { name: 'notes-server' };
    attrs.classification = r.resLabel;
    attrs.label = label;
    const resource = {
      type: `Hmcp::${resType}`,
      id: resType === 'Folder' ? r.folderId : resType === 'Table' ? r.tableId : 'notes-server',
    };
    const principal = { type: 'Hmcp::Principal', id: r.principal };
    const principalEntity = {
      uid: principal,
      attrs: {
        roles: r.roles,
        groups: r.groups,
        department: r.department,
        clearance: r.clearance,
        clearanceLabel: LABELS[r.clearance],
      },
      parents: r.roles.map((id) => ({ type: 'Hmcp::Role', id })),
    };
    const resourceEntity = { uid: resource, attrs, parents: [] as unknown[] };
    const context: Record<string, unknown> = {
      time: { epoch: r.epoch, hour: r.hour, minute: r.minute, weekday: r.weekday },
      transport: r.transport,
      client: r.client,
      classification: r.resLabel,
      label,
      approval: r.approval,
      tainted: r.tainted,
    };
    const entities: unknown[] = [principalEntity, resourceEntity];
    let action = r.action;
    switch (r.malform) {
      case 'attr-type':
        attrs.classification = String(r.resLabel);
        break;
      case 'attr-missing':
        delete attrs.label;
        break;
      case 'attr-extra':
        attrs.extra = 'x';
        break;
      case 'float':
        attrs.classification = 1.5;
        break;
      case 'parent-type':
        resourceEntity.parents.push({ type: 'Hmcp::Role', id: 'admin' });
        break;
      case 'dup-same':
        entities.push(resourceEntity);
        break;
      case 'dup-different': {
        // An attribute no policy names: trimming alone would make the two entries identical.
        const unread = resType === 'Folder' ? 'folder' : resType === 'Table' ? 'schema' : 'name';
        entities.push({ ...resourceEntity, attrs: { ...attrs, [unread]: 'other' } });
        break;
      }
      case 'unknown-action':
        action = 'notes_unknown';
        break;
      case 'ctx-missing':
        delete context.tainted;
        break;
      case 'resource-absent':
        // Conforms (nothing requires the entity), but a policy reading `resource.attr` errors.
        entities.pop();
        break;
      case 'other-resource-type': {
        // A well-formed Folder for a tool that declares a Table (or the reverse): no scope of the
        // action's own type may be taken for granted.
        const other = resType === 'Folder' ? 'Archive' : 'Folder';
        const uid = { type: `Hmcp::${other}`, id: 'hr' };
        const otherAttrs =
          other === 'Folder' ? { folder: 'hr', department: r.resDept } : { department: r.resDept };
        entities[1] = {
          uid,
          attrs: { ...otherAttrs, classification: 0, label: 'public' },
          parents: [],
        };
        return { principal, action, resource: uid, context, entities };
      }
    }
    return { principal, action, resource, context, entities };
  });

const normal = (d: CedarDecision) => ({
  allowed: d.allowed,
  approvable: d.approvable,
  policies: [...d.policies].sort(),
  errored: [...d.errored].sort(),
});

/** One sampled request on a Table (fixed seed), with its principal and resource entities. */
function tableRequest() {
  const [base] = fc.sample(
    requestArb.filter((r) => r.action === 'notes_query_table' && r.entities.length === 2),
    { numRuns: 1, seed: 3 },
  );
  if (!base) throw new Error('no sample');
  const [principal, resource] = base.entities as [
    { attrs: Record<string, unknown> },
    { attrs: Record<string, unknown> },
  ];
  return { base, principal, resource };
}

describe('sliced Cedar evaluation', () => {
  it.each([
    ['the examples and 50 more', [...examples, tempPolicy(POLICIES)]],
    ['the 50 alone', [tempPolicy(POLICIES)]],
  ])(
    'decides exactly as the whole request against the whole set (random requests, %s)',
    async (_, files) => {
      const sliced = await createPolicyEngine({ files, schema });
      const reference = await createPolicyEngine({ files, schema, slicing: false });
      expect(sliced.policies.length).toBeGreaterThanOrEqual(50);
      const outcomes = new Set<string>();
      fc.assert(
        fc.property(requestArb, (request) => {
          const want = normal(reference.authorize(request));
          const got = normal(sliced.authorize(request));
          expect(got).toEqual(want);
          // The cached answer is the same answer.
          expect(normal(sliced.authorize(request))).toEqual(want);
          outcomes.add(
            `${want.allowed}:${want.approvable}:${want.errored.length > 0}:${want.policies.length > 1}`,
          );
        }),
        { numRuns: 600, seed: 15 },
      );
      // The random requests reach allow, deny, approvable, errored and multi-policy outcomes.
      expect(outcomes.size).toBeGreaterThanOrEqual(5);
      // Every path ran: trimmed slices (most), the schema (unknown actions, duplicates, the
      // action-literal policy's slice), the JavaScript schema check and narrowed slices.
      const stats = sliced.stats();
      console.log('sliced engine', stats, 'reference', reference.stats());
      expect(stats.slices).toBeGreaterThan(5);
      expect(stats.trimmed).toBeGreaterThan(stats.whole);
      expect(stats.whole).toBeGreaterThan(0);
      expect(stats.nonConforming).toBeGreaterThan(0);
      // Slices narrowed by a request's own uids and resource (guards, `==` scopes) decided too.
      expect(stats.narrowed).toBeGreaterThan(0);
    },
    120_000,
  );

  it('folds a resource guard only for requests whose resource satisfies it', async () => {
    const file = tempPolicy(
      [
        `@id("permit") permit(principal, action, resource);`,
        `@id("zed") forbid(principal == Hmcp::Principal::"zed", action, resource);`,
        `@id("pii") forbid(principal, action, resource is Hmcp::Table) when { resource.schema == "pii" && principal.clearance < 3 };`,
      ].join('\n'),
    );
    const sliced = await createPolicyEngine({ files: [file], schema });
    const reference = await createPolicyEngine({ files: [file], schema, slicing: false });
    const { base, principal, resource } = tableRequest();
    const table = (schemaName: string) => ({
      ...resource,
      attrs: { ...resource.attrs, schema: schemaName },
    });
    const low = { ...principal, attrs: { ...principal.attrs, clearance: 1 } };
    // The guard holds (folded slice), fails (ruled out), then cannot be read (resource absent:
    // Cedar reports the policy as errored; the folded slice, with the same policies once `zed`
    // is ruled out, must not answer).
    const requests = [
      { ...base, entities: [low, table('pii')] },
      { ...base, entities: [low, table('public')] },
      { ...base, entities: [low] },
    ];
    const outcomes = requests.map((r) => normal(reference.authorize(r)));
    expect(outcomes.map((o) => o.allowed)).toEqual([false, true, true]);
    expect(outcomes[2]?.errored).toEqual(['pii']);
    for (const [i, r] of requests.entries())
      expect(normal(sliced.authorize(r))).toEqual(outcomes[i]);
  });

  it('never slices a set whose Long literals a JS number cannot hold exactly (above 2^53)', async () => {
    // policyToJson returns Longs as JS numbers: 1152921504606846977 would come back rounded to
    // …847000, and a slice built from it would fold this guard for a resource it does not match.
    const file = tempPolicy(
      [
        `@id("permit") permit(principal, action, resource);`,
        `@id("big") forbid(principal, action, resource is Hmcp::Table) when { resource.rows == 1152921504606846977 && principal.clearance < 3 };`,
      ].join('\n'),
    );
    const sliced = await createPolicyEngine({ files: [file], schema });
    const reference = await createPolicyEngine({ files: [file], schema, slicing: false });
    const { base, principal, resource } = tableRequest();
    const low = { ...principal, attrs: { ...principal.attrs, clearance: 1 } };
    // 2^60 differs from the literal by one; both round to the same JS number.
    const request = {
      ...base,
      entities: [low, { ...resource, attrs: { ...resource.attrs, rows: 2 ** 60 } }],
    };
    const want = normal(reference.authorize(request));
    expect(want.allowed).toBe(true);
    expect(normal(sliced.authorize(request))).toEqual(want);
    expect(sliced.stats().narrowed).toBe(0);
  });

  it('keeps deciding identically after a reload swaps the set', async () => {
    const file = tempPolicy(POLICIES);
    const sliced = await createPolicyEngine({ files: [...examples, file], schema });
    const reference = await createPolicyEngine({
      files: [...examples, file],
      schema,
      slicing: false,
    });
    const requests = fc.sample(requestArb, { numRuns: 60, seed: 7 });
    for (const r of requests) sliced.authorize(r);
    writeFileSync(
      file,
      `${POLICIES}\n@id("late") forbid(principal, action, resource) when { context.time.minute == 7 };`,
    );
    expect(await sliced.reload()).toMatchObject({ ok: true });
    expect(await reference.reload()).toMatchObject({ ok: true });
    for (const r of requests)
      expect(normal(sliced.authorize(r))).toEqual(normal(reference.authorize(r)));
  }, 60_000);
});
