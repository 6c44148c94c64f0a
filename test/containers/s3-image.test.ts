/**
 * The S3 server's container image (servers/s3/Dockerfile), built with podman from the
 * repository root and exercised as a client would use it, with every hardening flag, against a
 * real S3-compatible server (fauxqs, embedded on a random port) and a local STS (test/s3):
 * - over stdio with the MCP SDK `Client`, on host networking, with the image's default CMD: the
 *   configuration is a file mounted read-only at /etc/hardened-mcp/config.yaml that points
 *   `s3.endpoint` at fauxqs and `s3.stsEndpoint` at the fake STS, with a read role; the base
 *   AWS credentials that sign `AssumeRole` come from the environment (`-e NAME`, the value in
 *   podman's environment, never on its command line);
 * - its image configuration, size, file system, user and capabilities, stdout discipline and
 *   SIGTERM handling.
 *
 * Skipped, with the reason printed, only when podman or the locally built base images are
 * missing (`shared/tools/container-base-images.sh` sets both up; CI runs it first).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dataOf,
  type FakeSts,
  startFakeSts,
  startTestStore,
  TEST_AWS_ENV,
  type TestStore,
} from '../s3/support.ts';
import { auditRecordsIn } from '../support/audit.ts';
import { REPO_ROOT, textOf } from '../support/server.ts';
import {
  appLeftovers,
  appWritable,
  baseImagesOf,
  buildServerImage,
  containerSkipReason,
  FORBIDDEN_IMAGE_PATHS,
  HARDENING,
  HOST_NETWORK,
  imageSizeOverBase,
  listImageFiles,
  podman,
  podmanOk,
  until,
} from './podman.ts';

const DOCKERFILE = 'servers/s3/Dockerfile';
const IMAGE = 'localhost/hardened-mcp/s3:test';
/** The budget for what our layers add on top of the runtime base image. */
const SIZE_BUDGET_BYTES = 40 * 1000 * 1000;
/** Where the image's default CMD (and its HEALTHCHECK) read the configuration. */
const CONFIG_IN_CONTAINER = '/etc/hardened-mcp/config.yaml';
const DEFAULT_CMD = ['--config', CONFIG_IN_CONTAINER];
const HEALTHCHECK_CMD = [
  '/nodejs/bin/node',
  '/app/dist/bin.js',
  '--healthcheck',
  '--config',
  CONFIG_IN_CONTAINER,
];

const BUCKET = 'acme-reports';
const READ_ROLE = 'arn:aws:iam::123456789012:role/mcp-s3-read';
const DOCUMENT_KEY = 'reports/contacts.json';
const DOCUMENT = JSON.stringify(
  { team: 'billing', contacts: ['alice@example.com', 'bob.smith@example.org'] },
  null,
  2,
);

/**
 * The base AWS credentials as `-e NAME` flags: podman takes each value from its own
 * environment ({@link PODMAN_ENV}), so no value appears on a command line or in `podman inspect`.
 * The metadata service is off: the default provider chain stops at the environment.
 */
const AWS_ENV = { ...TEST_AWS_ENV, AWS_EC2_METADATA_DISABLED: 'true' };
const AWS_ENV_FLAGS = Object.keys(AWS_ENV).flatMap((name) => ['-e', name]);
const PODMAN_ENV: Record<string, string> = {
  ...Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  ),
  ...AWS_ENV,
};

const skipReason = containerSkipReason(DOCKERFILE);
if (skipReason) console.warn(`[containers] SKIPPED: ${skipReason}`);

const names: string[] = [];
/** A fresh container name, removed in afterAll whatever happens. */
function containerName(what: string): string {
  const name = `hmcp-test-s3-${what}-${process.pid}-${names.length}`;
  names.push(name);
  return name;
}

describe.skipIf(skipReason !== undefined)(
  `s3 server image${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let store: TestStore;
    let sts: FakeSts;
    let configDir: string;
    /** `podman run` flags shared by every run: hardening, host network, config mount, AWS env. */
    let runFlags: string[];

    beforeAll(async () => {
      const version = (
        JSON.parse(readFileSync(join(REPO_ROOT, 'servers/s3/package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
      const logDir = mkdtempSync(join(tmpdir(), 'hmcp-image-build-'));
      const started = Date.now();
      const [stores, built] = await Promise.allSettled([
        Promise.all([startTestStore(), startFakeSts()]),
        buildServerImage({
          server: 's3',
          dockerfile: DOCKERFILE,
          tag: IMAGE,
          buildArgs: { VERSION: version },
          logFile: join(logDir, 'build.log'),
        }),
      ]);
      if (stores.status === 'fulfilled') [store, sts] = stores.value; // stopped in afterAll
      if (built.status === 'rejected') throw built.reason;
      if (stores.status === 'rejected') throw stores.reason;
      rmSync(logDir, { recursive: true, force: true }); // kept only when the build fails
      console.log(`[containers] built ${IMAGE} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

      await store.createBucket(BUCKET);
      await store.put(BUCKET, DOCUMENT_KEY, DOCUMENT, 'application/json');
      await store.put(BUCKET, 'reports/2024/q1.txt', 'quarter 1\n', 'text/plain');

      // The configuration file the image's CMD names, readable by the image's uid (it holds no
      // secret), mounted read-only. The container shares the host's network: 127.0.0.1 is ours.
      configDir = mkdtempSync(join(tmpdir(), 'hmcp-image-s3-'));
      const config = join(configDir, 'config.yaml');
      writeFileSync(
        config,
        [
          's3:',
          '  region: us-east-1',
          `  endpoint: ${store.endpoint}`,
          '  forcePathStyle: true',
          `  stsEndpoint: ${sts.endpoint}`,
          `  roles: { read: ${READ_ROLE} }`,
          `  buckets: [{ name: ${BUCKET}, prefixes: [reports/] }]`,
          '',
        ].join('\n'),
        { mode: 0o644 },
      );
      chmodSync(config, 0o644);
      runFlags = [
        ...HARDENING,
        ...HOST_NETWORK,
        '-v',
        `${config}:${CONFIG_IN_CONTAINER}:ro`,
        ...AWS_ENV_FLAGS,
      ];
    }, 900_000);

    afterAll(async () => {
      for (const name of names) await podman(['rm', '-f', '--time', '0', name]);
      await sts?.stop();
      await store?.stop();
      if (configDir) rmSync(configDir, { recursive: true, force: true });
    });

    it('is configured to run as uid 65532 with an exec-form entrypoint, CMD, HEALTHCHECK and OCI labels', async () => {
      const [info] = JSON.parse(await podmanOk(['image', 'inspect', IMAGE])) as {
        Config: {
          User: string;
          Entrypoint: string[];
          Cmd: string[];
          Env: string[];
          Labels: Record<string, string>;
        };
        Healthcheck?: { Test: string[] };
      }[];
      expect(info?.Config.User).toBe('65532:65532');
      expect(info?.Config.Entrypoint).toEqual(['/nodejs/bin/node', '/app/dist/bin.js']);
      expect(info?.Config.Cmd).toEqual(DEFAULT_CMD);
      expect(info?.Healthcheck?.Test).toEqual(['CMD', ...HEALTHCHECK_CMD]);
      // No credentials baked in.
      expect(info?.Config.Env.filter((e) => /^AWS_/.test(e))).toEqual([]);
      expect(info?.Config.Labels).toMatchObject({
        'org.opencontainers.image.title': 'hardened-mcp-s3',
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.description': expect.stringContaining('S3'),
        'org.opencontainers.image.version': expect.stringMatching(/^\d+\.\d+\.\d+/),
      });
    });

    it('adds less than 40 MB to the runtime base image', async () => {
      const { runtime } = baseImagesOf(DOCKERFILE);
      const size = await imageSizeOverBase(IMAGE, runtime);
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      console.log(
        `[containers] ${IMAGE}: our layers add ${mb(size.added)} (${size.added} bytes) over ` +
          `${runtime} (${mb(size.base)}); image total ${mb(size.image)}; budget ${mb(SIZE_BUDGET_BYTES)}`,
      );
      expect(size.onTopOfBase).toBe(true);
      expect(size.added).toBeGreaterThan(0);
      expect(size.added).toBeLessThan(SIZE_BUDGET_BYTES);
    });

    it('has no shell, package manager, compiler, dev dependency, source map or test file', async () => {
      const sh = await podman(['run', '--rm', '--entrypoint', '/bin/sh', IMAGE, '-c', 'true']);
      expect(sh.code).not.toBe(0);

      const entries = await listImageFiles(IMAGE);
      const paths = new Set(entries.map((e) => e.path));
      expect(paths).toContain('app/dist/bin.js');
      expect(paths).toContain('nodejs/bin/node');
      expect(FORBIDDEN_IMAGE_PATHS.filter((p) => paths.has(p))).toEqual([]);
      // The S3 black-box tests' store is a dev dependency of the test package only.
      expect(appLeftovers(entries, ['fauxqs'])).toEqual([]);
      // The server's files belong to root and cannot be changed by the uid it runs as.
      expect(appWritable(entries)).toEqual([]);
    });

    it('serves MCP over stdio with every hardening flag: initialize, tools/list, s3_list_objects, a redacted s3_get_object', async () => {
      const stsCalls = sts.requests.length;
      const transport = new StdioClientTransport({
        command: 'podman',
        // No arguments after the image: its default CMD, `--config /etc/hardened-mcp/config.yaml`.
        args: ['run', '-i', '--rm', '--name', containerName('stdio'), ...runFlags, IMAGE],
        env: PODMAN_ENV,
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
        expect(client.getServerVersion()?.name).toBe('hardened-mcp-s3');
        // The read credentials came from AssumeRole with the read role, signed with the base
        // credentials passed in with `-e`.
        const assumed = sts.requests.slice(stsCalls);
        expect(assumed).toHaveLength(1);
        expect(assumed[0]).toMatchObject({ Action: 'AssumeRole', RoleArn: READ_ROLE });
        expect(assumed[0]?.authorization).toContain(
          `Credential=${TEST_AWS_ENV.AWS_ACCESS_KEY_ID}/`,
        );

        const { tools } = await client.listTools();
        expect(tools.map((t) => t.name).sort()).toEqual([
          's3_get_object',
          's3_head_object',
          's3_list_buckets',
          's3_list_objects',
        ]);

        const listed = await client.callTool({
          name: 's3_list_objects',
          arguments: { bucket: BUCKET },
        });
        expect(listed.isError, textOf(listed)).toBeFalsy();
        expect(
          dataOf<{ objects: { key: string }[] }>(listed)
            .objects.map((o) => o.key)
            .sort(),
        ).toEqual(['reports/2024/q1.txt', DOCUMENT_KEY]);

        const got = await client.callTool({
          name: 's3_get_object',
          arguments: { bucket: BUCKET, key: DOCUMENT_KEY },
        });
        expect(got.isError, textOf(got)).toBeFalsy();
        const doc = dataOf<{ encoding: string; text: string }>(got);
        expect(doc.encoding).toBe('text');
        expect(doc.text).toContain('"team": "billing"');
        expect(doc.text).toContain('[REDACTED:email]');
        expect(textOf(got)).not.toMatch(/alice@example\.com|bob\.smith@example\.org/);
        // The audit record went to stderr (never stdout), with the redaction counts.
        const audited = () =>
          auditRecordsIn(stderr).find((a) => a.tool === 's3_get_object') as
            | { outcome?: string; redactions?: Record<string, number> }
            | undefined;
        await until(async () => audited() !== undefined, 5_000, 'the audit record');
        expect(audited()).toMatchObject({
          outcome: 'success',
          redactions: expect.objectContaining({ email: 2 }),
        });
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
          params: { name: 's3_get_object', arguments: { bucket: BUCKET, key: DOCUMENT_KEY } },
        },
      ];
      const child = spawn(
        'podman',
        ['run', '-i', '--rm', '--name', containerName('raw'), ...runFlags, IMAGE],
        { stdio: ['pipe', 'pipe', 'pipe'], env: PODMAN_ENV },
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
        'the answer to s3_get_object',
      );
      child.stdin.end();
      expect(await exited, stderr).toBe(0);

      const lines = stdout.split('\n').filter((l) => l !== '');
      expect(lines.length).toBe(3);
      for (const line of lines) {
        const msg = JSON.parse(line) as { jsonrpc?: string; id?: number; error?: unknown };
        expect(msg.jsonrpc).toBe('2.0');
        expect(msg.error).toBeUndefined();
      }
      expect(lines.map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([1, 2, 3]);
      expect(stdout).not.toMatch(/alice@example\.com/);
      // Logs and audit records went to stderr.
      expect(stderr).toContain('ready on stdio');
      expect(stderr).toContain('"tool":"s3_get_object"');
    });

    it('runs as uid 65532 with no capabilities, and exits 0 within seconds of SIGTERM', async () => {
      const name = containerName('sigterm');
      // Detached with stdin kept open (`-d -i`): the server waits for a client until signalled.
      await podmanOk(['run', '-d', '-i', '--name', name, ...runFlags, IMAGE], { env: PODMAN_ENV });
      await until(
        async () => (await podman(['logs', name])).stderr.includes('ready on stdio'),
        30_000,
        'the server to be ready',
      );
      // The credentials came in through the environment, not the command line.
      const inspected = await podmanOk([
        'inspect',
        '--format',
        '{{json .Config.CreateCommand}}',
        name,
      ]);
      expect(inspected).not.toContain(TEST_AWS_ENV.AWS_SECRET_ACCESS_KEY);

      const top = (await podmanOk(['top', name, 'user', 'huser', 'capeff', 'args']))
        .trim()
        .split('\n');
      // header + PID 1 (the server), nothing else
      expect(top).toHaveLength(2);
      const row = (top[1] ?? '').trim().split(/\s+/);
      expect(row.slice(0, 3)).toEqual([
        'nonroot',
        process.getuid?.() === 0 ? '65532' : expect.any(String),
        'none',
      ]);
      expect(row.slice(3).join(' ')).toMatch(/^\/nodejs\/bin\/node \/app\/dist\/bin\.js/);

      // The image's HEALTHCHECK over stdio: nothing to probe, healthy while the process runs.
      const hc = await podman(['healthcheck', 'run', name], { timeoutMs: 30_000 });
      expect(hc.code, hc.stdout + hc.stderr).toBe(0);

      const pid = (await podmanOk(['inspect', '--format', '{{.State.Pid}}', name])).trim();
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^CapPrm:\s+0+$/m);
      if (process.getuid?.() === 0)
        expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);

      const started = Date.now();
      await podmanOk(['kill', '--signal', 'TERM', name]);
      const code = (await podmanOk(['wait', name], { timeoutMs: 15_000 })).trim();
      const elapsed = Date.now() - started;
      console.log(`[containers] s3: SIGTERM → exit ${code} in ${elapsed} ms`);
      expect(code).toBe('0'); // podman wait above gives up after 15 s
    });
  },
);
