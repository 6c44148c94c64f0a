import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import {
  CallToolResultSchema,
  type ClientCapabilities,
  type ElicitRequest,
  ElicitRequestSchema,
  type ElicitResult,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { APPROVAL_FORM_SCHEMA } from './approval.js';
import type { AuditEntry } from './audit/index.js';
import { ErrorCode, ToolError } from './errors.js';
import type { ClientInfo, Identity } from './identity.js';
import { createLogger } from './logger.js';
import { answerLine, createMcpServer } from './mcp-server.js';
import { createPipeline, TABLE_OUTPUT_SCHEMA } from './pipeline.js';
import { createMemoryRateLimiter } from './rate-limit.js';
import { createRedactor } from './redaction/index.js';
import { type ToolDefinition, toolKit } from './tool.js';

type Handle = string;

interface Setup {
  readonly client: Client;
  readonly executed: { tool: string; input: unknown; credential: Handle }[];
  readonly entries: AuditEntry[];
  readonly identityCalls: ClientInfo[];
  readonly elicitations: ElicitRequest['params'][];
  readonly logText: () => string;
}

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

function tools(executed: Setup['executed']): ToolDefinition<never, Handle, unknown>[] {
  const kit = toolKit<Handle>('test');
  const list = kit.read({
    name: 'list_customers',
    title: 'List customers',
    description: 'Lists customers.',
    output: 'table',
    input: z.strictObject({ limit: z.int().min(1).max(10).optional() }),
    execute: async (input, ctx) => {
      executed.push({ tool: 'test_list_customers', input, credential: ctx.client as Handle });
      return {
        kind: 'table',
        columns: [
          { name: 'id', type: 'int4' },
          { name: 'email', type: 'text' },
        ],
        rows: [
          [1, 'luisg@embraer.com.br'],
          [2, null],
        ],
        truncated: false,
      };
    },
  });
  const failing = kit.read({
    name: 'get_failure',
    title: 'Fails',
    description: 'Always fails upstream.',
    output: 'json',
    input: z.strictObject({}),
    execute: async () => {
      throw new ToolError(ErrorCode.UpstreamError, 'relation "nope" does not exist');
    },
  });
  const update = kit.write({
    name: 'update_customer',
    title: 'Update a customer',
    description: 'Updates one customer.',
    output: 'json',
    input: z.strictObject({ id: z.int().min(1), email: z.string().max(254) }),
    describeChange: (input) => `Set the e-mail of customer ${input.id}.`,
    execute: async (input, ctx) => {
      executed.push({ tool: 'test_update_customer', input, credential: ctx.client as Handle });
      return { kind: 'json', data: { updated: 1 }, rowCount: 1 };
    },
  });
  return [list, failing, update];
}

async function setup(
  options: {
    readonly mode?: 'read-only' | 'read-write';
    readonly capabilities?: ClientCapabilities;
    readonly elicit?: (params: ElicitRequest['params']) => ElicitResult | Promise<ElicitResult>;
    readonly roles?: readonly string[];
  } = {},
): Promise<Setup> {
  const executed: Setup['executed'] = [];
  const entries: AuditEntry[] = [];
  const identityCalls: ClientInfo[] = [];
  const elicitations: ElicitRequest['params'][] = [];
  const chunks: string[] = [];
  const redactor = createRedactor();
  const logger = createLogger(
    'info',
    redactor,
    new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
  );
  const pipeline = createPipeline<Handle>({
    server: { name: 'hardened-mcp-test', version: '0.0.1' },
    dataSource: 'the test database',
    tools: tools(executed),
    mode: options.mode ?? 'read-write',
    roles: { reader: ['test:read'], writer: ['test:read', 'test:write'] },
    clients: { read: 'READ-HANDLE', write: 'WRITE-HANDLE' },
    limits: { maxRows: 100, maxBytes: 64 * 1024 },
    redactor,
    audit: { record: (e) => entries.push(e) },
    rateLimiter: createMemoryRateLimiter({ points: 100, durationSeconds: 60 }),
    logger,
  });
  const server = createMcpServer({
    info: { name: 'hardened-mcp-test', version: '0.0.1', title: 'Test server' },
    instructions: 'Use test_list_customers to list customers.',
    pipeline,
    identity: (client): Identity => {
      identityCalls.push(client);
      return { principal: 'alice', roles: options.roles ?? ['writer'], transport: 'stdio', client };
    },
    logger,
  });
  const client = new Client(
    { name: 'test-client', version: '9.9.9' },
    { capabilities: options.capabilities ?? {} },
  );
  const elicit = options.elicit;
  if (elicit) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      elicitations.push(request.params);
      return elicit(request.params);
    });
  }
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  open.push(client, server);
  return { client, executed, entries, identityCalls, elicitations, logText: () => chunks.join('') };
}

interface ToolText {
  readonly content: { type: string; text?: string }[];
  readonly isError?: boolean;
  readonly structuredContent?: Record<string, unknown>;
  readonly _meta?: Record<string, unknown>;
}

function textOf(result: ToolText): string {
  const first = result.content[0];
  if (first?.type !== 'text' || first.text === undefined) throw new Error('no text content');
  return first.text;
}

function errorCode(result: ToolText): string | undefined {
  return (result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code;
}

async function callError(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<McpError> {
  const err = await client.callTool({ name, arguments: args }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an McpError, got ${String(err)}`);
  return err;
}

describe('createMcpServer: initialize and tools/list', () => {
  it('announces the server, its instructions and the tools capability', async () => {
    const { client } = await setup();
    expect(client.getServerVersion()).toMatchObject({
      name: 'hardened-mcp-test',
      version: '0.0.1',
      title: 'Test server',
    });
    expect(client.getInstructions()).toBe('Use test_list_customers to list customers.');
    expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: false });
  });

  it('lists the enabled tools with strict input schemas, annotations and output schemas', async () => {
    const { client } = await setup();
    const { tools: listed } = await client.listTools();
    expect(listed.map((t) => t.name)).toEqual([
      'test_list_customers',
      'test_get_failure',
      'test_update_customer',
    ]);
    const [list, , update] = listed;
    expect(list).toMatchObject({
      name: 'test_list_customers',
      title: 'List customers',
      description: 'Lists customers.',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer' } },
      },
      outputSchema: JSON.parse(JSON.stringify(TABLE_OUTPUT_SCHEMA)),
      annotations: {
        title: 'List customers',
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    });
    expect(update).toMatchObject({
      inputSchema: { type: 'object', additionalProperties: false, required: ['id', 'email'] },
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    });
    expect(update?.outputSchema).toBeUndefined();
  });

  it('does not list write tools in read-only mode', async () => {
    const { client } = await setup({ mode: 'read-only' });
    const { tools: listed } = await client.listTools();
    expect(listed.map((t) => t.name)).toEqual(['test_list_customers', 'test_get_failure']);
  });
});

describe('createMcpServer: tools/call', () => {
  it('runs a call through the pipeline and returns a valid, redacted, fenced result', async () => {
    const { client, executed, entries } = await setup();
    await client.listTools(); // lets the client validate structuredContent against the output schema
    const result = (await client.callTool({
      name: 'test_list_customers',
      arguments: { limit: 2 },
    })) as ToolText;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({
      columns: [
        { name: 'id', type: 'int4' },
        { name: 'email', type: 'text' },
      ],
      rows: [
        [1, '[REDACTED:email]'],
        [2, null],
      ],
      rowCount: 2,
      truncated: false,
    });
    const text = textOf(result);
    expect(text).toMatch(
      /^2 rows\.\nThe text between the UNTRUSTED-DATA markers came from the test database\./,
    );
    expect(text).toMatch(
      /<<<UNTRUSTED-DATA ([0-9a-f]{32})>>>\nid \| email\n1 \| \[REDACTED:email\]\n2 \| NULL\n<<<END-UNTRUSTED-DATA \1>>>$/,
    );
    expect(text).not.toContain('embraer');
    expect(executed).toEqual([
      { tool: 'test_list_customers', input: { limit: 2 }, credential: 'READ-HANDLE' },
    ]);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      principal: 'alice',
      client: { name: 'test-client', version: '9.9.9' },
      outcome: 'success',
    });
  });

  it('returns tool errors as results with isError, not as protocol errors', async () => {
    const { client } = await setup();
    const result = (await client.callTool({ name: 'test_get_failure', arguments: {} })) as ToolText;
    expect(result.isError).toBe(true);
    expect(errorCode(result)).toBe('upstream_error');
    expect(textOf(result)).toMatch(
      /^upstream_error: relation "nope" does not exist \(correlation id [0-9a-f-]{36}\)$/,
    );
  });

  it('returns refusals (invalid input, forbidden) as results with isError', async () => {
    const { client, executed } = await setup({ roles: ['reader'] });
    const invalid = (await client.callTool({
      name: 'test_list_customers',
      arguments: { limit: 2, extra: true },
    })) as ToolText;
    expect(errorCode(invalid)).toBe('invalid_input');
    const forbidden = (await client.callTool({
      name: 'test_update_customer',
      arguments: { id: 1, email: 'a@b.co' },
    })) as ToolText;
    expect(errorCode(forbidden)).toBe('forbidden');
    expect(executed).toHaveLength(0);
  });

  it('answers an unknown tool with JSON-RPC error -32602', async () => {
    const { client, entries } = await setup();
    const err = await callError(client, 'test_drop_database');
    expect(err.code).toBe(-32602);
    expect(err.message).toContain('Unknown tool');
    expect(entries[0]).toMatchObject({
      tool: 'test_drop_database',
      access: 'none',
      outcome: 'denied',
    });
  });

  it('refuses a task-augmented call before the tool runs (no tasks capability)', async () => {
    const { client, executed, entries } = await setup();
    const err = await client
      .request(
        {
          method: 'tools/call',
          params: { name: 'test_list_customers', arguments: {}, task: { ttl: 60_000 } },
        },
        CallToolResultSchema,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(McpError);
    expect(executed).toHaveLength(0);
    expect(entries).toHaveLength(0);
  });

  it('answers a disabled tool exactly like an unknown one', async () => {
    const { client, executed } = await setup({ mode: 'read-only' });
    const disabled = await callError(client, 'test_update_customer', { id: 1, email: 'a@b.co' });
    const unknown = await callError(client, 'test_nope_nope', { id: 1, email: 'a@b.co' });
    expect(disabled.code).toBe(-32602);
    expect(disabled.code).toBe(unknown.code);
    expect(disabled.message).toBe(unknown.message);
    expect(disabled.data).toEqual(unknown.data);
    expect(executed).toHaveLength(0);
  });

  it("resolves the identity once per connection from the client's name and version", async () => {
    const { client, identityCalls, entries } = await setup();
    expect(identityCalls).toEqual([]); // lazily, on the first call
    await client.callTool({ name: 'test_list_customers', arguments: {} });
    await client.callTool({ name: 'test_get_failure', arguments: {} });
    await client.callTool({ name: 'test_nope_nope', arguments: {} }).catch(() => undefined);
    expect(identityCalls).toEqual([{ name: 'test-client', version: '9.9.9' }]);
    expect(entries.map((e) => e.client)).toEqual(
      Array(3).fill({ name: 'test-client', version: '9.9.9' }),
    );
    expect(entries.map((e) => e.principal)).toEqual(['alice', 'alice', 'alice']);
  });
});

describe('createMcpServer: approval through elicitation', () => {
  const WRITE = { name: 'test_update_customer', arguments: { id: 42, email: 'new@example.com' } };

  it('asks a client with elicitation and runs the write when it approves', async () => {
    const s = await setup({
      capabilities: { elicitation: {} },
      elicit: () => ({ action: 'accept', content: { approve: true } }),
    });
    const result = (await s.client.callTool(WRITE)) as ToolText;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ updated: 1 });
    expect(s.executed).toEqual([
      {
        tool: 'test_update_customer',
        input: { id: 42, email: 'new@example.com' },
        credential: 'WRITE-HANDLE',
      },
    ]);
    expect(s.elicitations).toHaveLength(1);
    expect(s.elicitations[0]).toMatchObject({
      mode: 'form',
      message:
        'test_update_customer (principal alice) asks to make this change:\nSet the e-mail of customer 42.',
      requestedSchema: JSON.parse(JSON.stringify(APPROVAL_FORM_SCHEMA)),
    });
    expect(s.entries[0]?.decision).toEqual({ result: 'allowed', approval: 'approved' });
  });

  it.each([
    ['decline', { action: 'decline' }, 'declined'],
    ['accept without approve: true', { action: 'accept', content: { approve: false } }, 'declined'],
    ['cancel', { action: 'cancel' }, 'cancelled'],
  ] as const)(
    'does not run the write when the user answers %s',
    async (_label, answer, approval) => {
      const s = await setup({
        capabilities: { elicitation: {} },
        elicit: () => answer as ElicitResult,
      });
      const result = (await s.client.callTool(WRITE)) as ToolText;
      expect(result.isError).toBe(true);
      expect(errorCode(result)).toBe('approval_declined');
      expect(textOf(result)).toContain(
        `the change was ${approval} by the user; nothing was changed`,
      );
      expect(s.elicitations).toHaveLength(1);
      expect(s.executed).toHaveLength(0);
      expect(s.entries[0]?.decision).toEqual({
        result: 'denied',
        reason: 'approval_declined',
        approval,
      });
    },
  );

  it('treats a failing or malformed elicitation answer as cancelled', async () => {
    const throwing = await setup({
      capabilities: { elicitation: {} },
      elicit: () => {
        throw new Error('UI crashed');
      },
    });
    expect(errorCode((await throwing.client.callTool(WRITE)) as ToolText)).toBe(
      'approval_declined',
    );
    expect(throwing.executed).toHaveLength(0);
    expect(throwing.entries[0]?.decision.approval).toBe('cancelled');
    expect(throwing.logText()).toContain('approval request failed; treating as cancelled');

    const malformed = await setup({
      capabilities: { elicitation: {} },
      elicit: () => ({ action: 'accept', content: { approve: 'yes' } }),
    });
    expect(errorCode((await malformed.client.callTool(WRITE)) as ToolText)).toBe(
      'approval_declined',
    );
    expect(malformed.executed).toHaveLength(0);
  });

  it('refuses the write as approval_unavailable for a client without elicitation', async () => {
    const s = await setup();
    const result = (await s.client.callTool(WRITE)) as ToolText;
    expect(result.isError).toBe(true);
    expect(errorCode(result)).toBe('approval_unavailable');
    expect(s.executed).toHaveLength(0);
    expect(s.entries[0]?.decision).toEqual({
      result: 'denied',
      reason: 'approval_unavailable',
      approval: 'unavailable',
    });
  });

  it('does not ask for approval of reads', async () => {
    const elicit = vi.fn((): ElicitResult => ({ action: 'decline' }));
    const s = await setup({ capabilities: { elicitation: {} }, elicit });
    const result = (await s.client.callTool({
      name: 'test_list_customers',
      arguments: {},
    })) as ToolText;
    expect(result.isError).toBeFalsy();
    expect(elicit).not.toHaveBeenCalled();
  });

  it('does not run the write when the client cancels the call while the human is asked', async () => {
    const controller = new AbortController();
    const s = await setup({
      capabilities: { elicitation: {} },
      elicit: () => {
        controller.abort();
        return new Promise<ElicitResult>((resolve) =>
          setTimeout(() => resolve({ action: 'accept', content: { approve: true } }), 20),
        );
      },
    });
    await expect(
      s.client.callTool(WRITE, undefined, { signal: controller.signal }),
    ).rejects.toThrow();
    await vi.waitFor(() => expect(s.entries).toHaveLength(1), { timeout: 1000, interval: 5 });
    expect(s.executed).toHaveLength(0);
    expect(s.entries[0]?.decision).toEqual({
      result: 'denied',
      reason: 'approval_declined',
      approval: 'cancelled',
    });
  });

  // Regression test (was a bug): mcp-server.ts:512-514 treats any `elicitation` capability as "can approve", but the
  // approval request uses form mode (mcp-server.ts:518) and the SDK refuses form elicitation for
  // a client that only declares `elicitation: { url: {} }` ("Client does not support form
  // elicitation."). Such a client gets approval_declined ("cancelled", audit approval
  // 'cancelled') instead of approval_unavailable ('unavailable'), misreporting that a human
  // cancelled. Expected: `supported` checks `elicitation.form` (an empty `{}` means form).
  it('a client with URL-only elicitation cannot approve: approval_unavailable', async () => {
    const s = await setup({
      capabilities: { elicitation: { url: {} } },
      elicit: () => ({ action: 'accept', content: { approve: true } }),
    });
    const result = (await s.client.callTool(WRITE)) as ToolText;
    expect(s.executed).toHaveLength(0);
    expect(errorCode(result)).toBe('approval_unavailable');
    expect(s.entries[0]?.decision.approval).toBe('unavailable');
  });
});

describe('answerLine: the tools/call answer written from the JSON the pipeline already holds', () => {
  /** Every message the server side sends, as the SDK hands it to its transport. */
  async function sentMessages(calls: { name: string; arguments: Record<string, unknown> }[]) {
    const sent: unknown[] = [];
    const executed: Setup['executed'] = [];
    const redactor = createRedactor();
    const logger = createLogger('silent', redactor, new Writable({ write: (_c, _e, cb) => cb() }));
    const pipeline = createPipeline<Handle>({
      server: { name: 'hardened-mcp-test', version: '0.0.1' },
      dataSource: 'the test database',
      tools: tools(executed),
      mode: 'read-write',
      roles: { writer: ['test:read', 'test:write'] },
      clients: { read: 'READ-HANDLE', write: 'WRITE-HANDLE' },
      limits: { maxRows: 100, maxBytes: 64 * 1024 },
      redactor,
      audit: { record: () => undefined },
      rateLimiter: createMemoryRateLimiter({ points: 100, durationSeconds: 60 }),
      logger,
    });
    const server = createMcpServer({
      info: { name: 'hardened-mcp-test', version: '0.0.1' },
      pipeline,
      identity: (client): Identity => ({
        principal: 'alice',
        roles: ['writer'],
        transport: 'stdio',
        client,
      }),
      logger,
    });
    const client = new Client({ name: 'test-client', version: '9.9.9' });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    const send = serverTransport.send.bind(serverTransport);
    serverTransport.send = (message, options) => {
      sent.push(message);
      return send(message, options);
    };
    await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
    open.push(client, server);
    for (const call of calls) await client.callTool(call).catch(() => undefined);
    return sent;
  }

  it('is byte-identical to the SDK serialization of the answers it applies to', async () => {
    const sent = await sentMessages([
      { name: 'test_list_customers', arguments: {} }, // table: JSON built by shapeOutput
      { name: 'test_list_customers', arguments: { limit: 99 } }, // refusal: errorResult
      { name: 'test_get_failure', arguments: {} }, // fenced upstream error
      { name: 'test_update_customer', arguments: { id: 1, email: 'a@b.c' } }, // no approval channel
    ]);
    const answers = sent.filter(
      (m) =>
        typeof m === 'object' && m !== null && 'result' in m && 'content' in (m.result as object),
    );
    expect(answers).toHaveLength(4);
    for (const message of answers) {
      // The SDK answers a request as { result, jsonrpc, id }, members in this order: the fact
      // answerLine relies on (it returns undefined for any other shape).
      expect(Object.keys(message as object)).toEqual(['result', 'jsonrpc', 'id']);
      // The JSON rides on the result as a hidden member: no enumerable key, not serialized.
      const result = (message as { result: object }).result;
      expect(
        Object.keys(result).every((k) =>
          ['content', 'structuredContent', 'isError', '_meta'].includes(k),
        ),
      ).toBe(true);
      expect(JSON.stringify({ ...result })).toBe(JSON.stringify(result));
      expect(answerLine(message)).toBe(serializeMessage(message as never));
    }
  });

  it('returns undefined for every other message, which the SDK then serializes', async () => {
    const sent = await sentMessages([{ name: 'test_list_customers', arguments: {} }]);
    const answer = sent.find((m) => answerLine(m) !== undefined) as {
      result: object;
      id: number;
    };
    expect(answer).toBeDefined();
    const { result, id } = answer;
    // initialize's answer and any result the pipeline did not return
    expect(sent.filter((m) => answerLine(m) !== undefined)).toEqual([answer]);
    expect(answerLine({ result: { ...result }, jsonrpc: '2.0', id })).toBeUndefined();
    // other member sets or orders, other ids, errors
    expect(answerLine({ jsonrpc: '2.0', result, id })).toBeUndefined();
    expect(answerLine({ result, jsonrpc: '2.0', id, extra: 1 })).toBeUndefined();
    expect(answerLine({ result, jsonrpc: '2.0', id: null })).toBeUndefined();
    expect(answerLine({ result, jsonrpc: '1.0', id })).toBeUndefined();
    expect(answerLine({ error: { code: 1, message: 'x' }, jsonrpc: '2.0', id })).toBeUndefined();
    // string ids are written as JSON strings
    const withStringId = { result, jsonrpc: '2.0', id: 'a"\u2028b' };
    expect(answerLine(withStringId)).toBe(serializeMessage(withStringId as never));
  });

  it('CallResponse.json is the exact JSON of the result, the bytes the audit digest hashes', async () => {
    const executed: Setup['executed'] = [];
    const entries: AuditEntry[] = [];
    const redactor = createRedactor();
    const pipeline = createPipeline<Handle>({
      server: { name: 't', version: '0' },
      dataSource: 'the test database',
      tools: tools(executed),
      mode: 'read-write',
      roles: { writer: ['test:read', 'test:write'] },
      clients: { read: 'READ-HANDLE', write: 'WRITE-HANDLE' },
      limits: { maxRows: 100, maxBytes: 64 * 1024 },
      redactor,
      audit: { record: (e) => entries.push(e) },
      rateLimiter: createMemoryRateLimiter({ points: 100, durationSeconds: 60 }),
      logger: createLogger('silent', redactor, new Writable({ write: (_c, _e, cb) => cb() })),
    });
    const identity: Identity = {
      principal: 'a',
      roles: ['writer'],
      transport: 'stdio',
      client: {},
    };
    for (const [name, args] of [
      ['test_list_customers', {}],
      ['test_get_failure', {}],
      ['test_update_customer', { id: 1, email: 'x@y.z' }],
    ] as const) {
      const response = await pipeline.callTool({
        name,
        arguments: args,
        identity,
        approval: { supported: false, request: async () => 'cancelled' },
        signal: new AbortController().signal,
      });
      if (response.kind !== 'result') throw new Error('expected a result');
      const json = response.json;
      expect(json).toBe(JSON.stringify(response.result));
      expect(entries.at(-1)?.resultSha256).toBe(
        createHash('sha256')
          .update(json ?? '')
          .digest('hex'),
      );
    }
  });
});
