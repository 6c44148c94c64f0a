/**
 * The connector contract suite: one set of black-box checks that every connector runs against
 * its built bin over stdio with the MCP SDK client, so that what the core promises holds for
 * each server as shipped — the untrusted-data fence, redaction, one audit record per call,
 * unknown and disabled tools answered alike, approval refusals, sanitized errors, and stdout
 * carrying nothing but JSON-RPC.
 *
 * ```ts
 * import { describeConnectorContract } from '@hardened-mcp/test-kit/contract';
 * describeConnectorContract({ connector: 'example', bin, start: … , readCall: … });
 * ```
 *
 * Import it from a vitest test file only (it declares `describe`/`it` blocks).
 */
import { spawn } from 'node:child_process';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { auditRecordsIn, type ServerSession, textOf, writeTempConfig } from './stdio-server.js';

/** A tool call the suite makes. */
export interface ContractCall {
  readonly name: string;
  readonly arguments: Record<string, unknown>;
}

/** How the suite starts the connector under test. */
export interface ContractStartOptions {
  readonly mode: 'read-only' | 'read-write';
  /** Client capabilities, e.g. `{ elicitation: {} }` for approvals. */
  readonly capabilities?: Record<string, unknown> | undefined;
}

/** What a connector gives the contract suite. */
export interface ConnectorContract {
  /** The connector name (tool prefix), e.g. `postgres`. */
  readonly connector: string;
  /** Starts the bin over stdio (configuration and environment are the connector's business). */
  start(options: ContractStartOptions): Promise<ServerSession>;
  /**
   * The command that starts the same server in read-only mode, for the raw stdout check:
   * `{ args, env }` run with this process's Node (args[0] is the bin).
   */
  rawCommand(): Promise<{ readonly args: readonly string[]; readonly env: Record<string, string> }>;
  /** A read call whose result carries data from the source, including `pii` verbatim upstream. */
  readonly readCall: ContractCall & { readonly pii: string };
  /** A read call that fails upstream (e.g. a missing object), answered as a tool error. */
  readonly failingCall: ContractCall;
  /**
   * A write call (read-write mode), and how to tell that it changed nothing upstream: `unchanged`
   * gets the session that was refused (to look through the server itself) and answers true when
   * the write's effect is absent.
   */
  readonly writeCall: ContractCall & {
    readonly unchanged: (session: ServerSession) => Promise<boolean>;
  };
}

const CORRELATED = /^([a-z_]+): [^\n]* \(correlation id [0-9a-f-]{36}\)/;

/** Declares the contract suite for one connector (call at the top level of a test file). */
export function describeConnectorContract(c: ConnectorContract): void {
  // Each check starts one or two server processes: allow for a loaded machine.
  describe(`connector contract: ${c.connector}`, { timeout: 60_000 }, () => {
    const sessions: ServerSession[] = [];
    const start = async (options: ContractStartOptions) => {
      const s = await c.start(options);
      sessions.push(s);
      return s;
    };
    afterAll(async () => {
      for (const s of sessions.splice(0)) await s.close();
    });

    it('lists only read tools in read-only mode, each named <connector>_<verb>_<noun> and read-only', async () => {
      const s = await start({ mode: 'read-only' });
      const { tools } = await s.client.listTools();
      expect(tools.length).toBeGreaterThan(0);
      for (const t of tools) {
        expect(t.name).toMatch(new RegExp(`^${c.connector}_[a-z0-9]+(_[a-z0-9]+)*$`));
        expect(t.annotations?.readOnlyHint).toBe(true);
      }
      expect(tools.map((t) => t.name)).not.toContain(c.writeCall.name);
    });

    it('redacts data from the source and puts its text inside the untrusted-data fence', async () => {
      const s = await start({ mode: 'read-only' });
      const r = await s.client.callTool(c.readCall);
      expect(r.isError).toBeFalsy();
      const serialized = JSON.stringify(r);
      expect(serialized).not.toContain(c.readCall.pii);
      expect(serialized).toContain('[REDACTED:');
      const text = textOf(r);
      const m = /<<<UNTRUSTED-DATA ([0-9a-f]{32})>>>\n[\s\S]*\n<<<END-UNTRUSTED-DATA \1>>>/.exec(
        text,
      );
      expect(m, 'the text rendering is fenced').not.toBeNull();
      expect(text.indexOf('[REDACTED:')).toBeGreaterThan(text.indexOf('<<<UNTRUSTED-DATA'));
    });

    it('writes exactly one audit record per call, allowed or refused', async () => {
      const s = await start({ mode: 'read-only' });
      const before = auditRecordsIn(s.stderr()).length;
      await s.client.callTool(c.readCall);
      await s.client.callTool({
        name: c.readCall.name,
        arguments: { ...c.readCall.arguments, unexpectedKey: 1 },
      });
      await s.client.callTool(c.failingCall);
      await expect(
        s.client.callTool({ name: `${c.connector}_no_such_tool`, arguments: {} }),
      ).rejects.toThrow();
      const deadline = Date.now() + 5_000;
      while (auditRecordsIn(s.stderr()).length < before + 4 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      const records = auditRecordsIn(s.stderr()).slice(before);
      expect(records.map((r) => [r.tool, r.outcome])).toEqual([
        [c.readCall.name, 'success'],
        [c.readCall.name, 'denied'],
        [c.failingCall.name, expect.stringMatching(/^(error|denied)$/)],
        [`${c.connector}_no_such_tool`, 'denied'],
      ]);
      expect(JSON.stringify(records)).not.toContain(c.readCall.pii);
    });

    it('answers unknown and disabled tools with the same protocol error', async () => {
      const s = await start({ mode: 'read-only' });
      const errorOf = async (name: string) => {
        try {
          await s.client.callTool({ name, arguments: c.writeCall.arguments });
          return undefined;
        } catch (err) {
          return { code: (err as { code?: number }).code, message: (err as Error).message };
        }
      };
      const unknown = await errorOf(`${c.connector}_no_such_tool`);
      const disabled = await errorOf(c.writeCall.name);
      expect(unknown).toEqual({ code: -32602, message: expect.stringContaining('Unknown tool') });
      expect(disabled).toEqual(unknown);
    });

    it('refuses a write the human declines, and one the client cannot ask about; nothing changes', async () => {
      const asking = await start({ mode: 'read-write', capabilities: { elicitation: {} } });
      const asked: string[] = [];
      asking.client.setRequestHandler(ElicitRequestSchema, async (req) => {
        asked.push(req.params.message);
        return { action: 'decline' };
      });
      const declined = await asking.client.callTool(c.writeCall);
      expect(declined.isError).toBe(true);
      expect(CORRELATED.exec(textOf(declined))?.[1]).toBe('approval_declined');
      expect(asked).toHaveLength(1);
      const mute = await start({ mode: 'read-write' });
      const unavailable = await mute.client.callTool(c.writeCall);
      expect(CORRELATED.exec(textOf(unavailable))?.[1]).toBe('approval_unavailable');
      expect(await c.writeCall.unchanged(asking)).toBe(true);
      expect(await c.writeCall.unchanged(mute)).toBe(true);
    });

    it('answers failures with a stable code and a correlation id, never a stack, a path or SQL', async () => {
      const s = await start({ mode: 'read-only' });
      const r = await s.client.callTool(c.failingCall);
      expect(r.isError).toBe(true);
      const text = textOf(r);
      expect(text).toMatch(CORRELATED);
      expect(text).not.toMatch(/\n\s+at |node_modules|\/dist\/|\.ts:\d+|\bSELECT\b.*\bFROM\b/);
      const invalid = await s.client.callTool({
        name: c.readCall.name,
        arguments: { ...c.readCall.arguments, unexpectedKey: 'x'.repeat(50) },
      });
      expect(CORRELATED.exec(textOf(invalid))?.[1]).toBe('invalid_input');
      expect(textOf(invalid)).not.toContain('x'.repeat(50));
    });

    it('exits 0 on SIGTERM while its client keeps stdin open', async () => {
      const { args, env } = await c.rawCommand();
      const child = spawn(process.execPath, [...args], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
      });
      const deadline = Date.now() + 20_000;
      while (!/ready on stdio/.test(stderr) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
      expect(stderr).toMatch(/ready on stdio/);
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000)),
      ]);
      if (code === 'hung') child.kill('SIGKILL');
      expect(code).toBe(0);
      child.stdin.end();
    });

    it('writes nothing but JSON-RPC messages on stdout', async () => {
      const { args, env } = await c.rawCommand();
      const child = spawn(process.execPath, [...args], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
      });
      const send = (msg: unknown) => child.stdin.write(`${JSON.stringify(msg)}\n`);
      send({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      });
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
      send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: c.readCall });
      send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: c.failingCall });
      // Calls run concurrently: wait for both answers, in whatever order they come.
      const deadline = Date.now() + 30_000;
      while (!(/"id":3[,}]/.test(stdout) && /"id":4[,}]/.test(stdout)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 25));
      child.stdin.end();
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code, 'a clean exit when stdin closes').toBe(0);
      const lines = stdout.split('\n').filter((l) => l.length > 0);
      // One answer per request (initialize, tools/list, two calls), and nothing else.
      // Calls run concurrently: answers may come in any order.
      const ids = lines.map((l) => (JSON.parse(l) as { id?: number }).id ?? 0);
      expect(ids.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
      for (const line of lines)
        expect((JSON.parse(line) as { jsonrpc?: string }).jsonrpc).toBe('2.0');
    });
  });
}

/** Writes `config` to a temp file and returns the `--config` arguments for {@link ConnectorContract.rawCommand}. */
export function configArgs(config: Record<string, unknown>): string[] {
  return ['--config', writeTempConfig(config)];
}
