/**
 * The container check every server image runs (issue 9 §5: "a shared container check that every
 * image runs"). {@link describeImageCheck} builds `servers/<server>/Dockerfile` with podman from
 * the repository root and exercises the image as a client would use it, with every hardening flag
 * ({@link HARDENING}: read-only root file system without tmpfs, no capabilities,
 * no-new-privileges):
 * - its configuration: uid 65532, exec-form ENTRYPOINT and CMD, the shell-free HEALTHCHECK, the
 *   OCI `org.opencontainers.image.*` labels, no credential baked into its environment;
 * - its size over the runtime base image (a budget) and its file system: no shell, package
 *   manager, compiler, development package, source map, TypeScript source, test file or `.env`;
 *   `/app` owned by root and not writable by the server's uid;
 * - the stdio form (`podman run -i`, host networking) with the MCP SDK `Client`: `initialize`,
 *   `tools/list` and one real read call whose upstream data holds PII, redacted in the answer and
 *   counted in the audit record on stderr;
 * - stdout discipline (nothing but JSON-RPC) and exit 0 when stdin closes;
 * - the running process: uid 65532, no effective or permitted capability, NoNewPrivs, only the
 *   expected processes, the HEALTHCHECK over stdio, exit 0 within seconds of SIGTERM, and no
 *   credential value on podman's recorded command line;
 * - the HTTP service form: API-key authentication, the MCP and management ports published with
 *   `-p` ({@link PUBLISHING_NETWORK}), 401 without a valid key, the same read call through the
 *   SDK's Streamable HTTP client, the audit record naming the key's principal, the image's
 *   HEALTHCHECK probing `/healthz`, `/readyz` through the published port, exit 0 on SIGTERM.
 *
 * A per-server file (`<server>-image.test.ts`) gives what differs: how to start the upstream,
 * the configuration and credentials of each form, the read call and its expected redactions,
 * and its own connector-specific checks (the `extra` hook).
 *
 * Skipped, with the reason printed, only when podman or the locally built base images are
 * missing (`../shared/tools/container-base-images.sh` sets both up; `.ci/run` runs it first).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@hardened-mcp/core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecordsIn } from '../support/audit.ts';
import { connectHttpClient, freePort, initializeBody, mcpPost } from '../support/http.ts';
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
  PUBLISHING_NETWORK,
  podman,
  podmanOk,
  until,
} from './podman.ts';

/** Where the image's default CMD and its HEALTHCHECK read the configuration. */
export const CONFIG_IN_CONTAINER = '/etc/hardened-mcp/config.yaml';
/** The image's default CMD (every server's Dockerfile). */
export const DEFAULT_CMD: readonly string[] = ['--config', CONFIG_IN_CONTAINER];
/** The image's HEALTHCHECK command (exec form: the image has no shell). */
export const HEALTHCHECK_CMD: readonly string[] = [
  '/nodejs/bin/node',
  '/app/dist/bin.js',
  '--healthcheck',
  '--config',
  CONFIG_IN_CONTAINER,
];
/** Where the HTTP form listens inside the container (see {@link httpServiceConfig}). */
export const MCP_PORT_IN_CONTAINER = 3000;
/** Where the HTTP form's management listener (health, readiness, metrics) listens inside. */
export const MANAGEMENT_PORT_IN_CONTAINER = 9464;
/**
 * The default budget for what a server's layers add on top of the runtime base image (bytes).
 * 48 MB since the core carries the Cedar engine (`@cedar-policy/cedar-wasm`, about 4 MB) and the
 * mutual-TLS and token-exchange libraries (`@peculiar/x509`, `openid-client`); it was 40 MB.
 */
export const DEFAULT_SIZE_BUDGET_BYTES = 48 * 1000 * 1000;

/**
 * The core configuration of the HTTP service form, as YAML lines to append to a server's own
 * configuration: `transport: http` (in the file, so that the HEALTHCHECK reading it probes the
 * same listener), Streamable HTTP on 0.0.0.0:{@link MCP_PORT_IN_CONTAINER}, management on
 * 0.0.0.0:{@link MANAGEMENT_PORT_IN_CONTAINER}, the Host names a client uses through the
 * published port, and one API key (its SHA-256 only) for `principal` with the role `reader`.
 * The same settings as servers/postgres/compose/config-http.template.yaml.
 */
export function httpServiceConfig(
  apiKeySha256: string,
  principal: string,
  publishedPort: number,
): string[] {
  return [
    'transport: http',
    'http:',
    '  host: 0.0.0.0',
    `  port: ${MCP_PORT_IN_CONTAINER}`,
    // The Host check includes the port: clients reach the server on the published port, so that
    // is the URL it announces, as any port-mapped deployment sets it.
    `  publicUrl: http://127.0.0.1:${publishedPort}/mcp`,
    '  allowedHosts: [localhost, 127.0.0.1]',
    `  management: { host: 0.0.0.0, port: ${MANAGEMENT_PORT_IN_CONTAINER} }`,
    'auth:',
    '  mode: api-key',
    '  apiKeys:',
    `    - { id: ${principal}, sha256: ${apiKeySha256}, principal: ${principal}, roles: [reader] }`,
  ];
}

/** Writes the files a form mounts into the container; all are removed in `afterAll`. */
export interface ImageCheckFiles {
  /** A file that holds no secret, mode 0644 (readable by the image's uid); returns its path. */
  config(name: string, text: string): string;
  /**
   * A secret file, mode 0400, owned by the image's uid 65532 (the server refuses a credential
   * file that others can read); returns its path.
   */
  secret(name: string, value: string): Promise<string>;
}

/** What a per-server file says about one form (stdio or HTTP) of its image. */
export interface ImageForm {
  /**
   * `podman run` flags after the hardening and network flags: the `-v` mounts (the configuration
   * at {@link CONFIG_IN_CONTAINER}, read-only; secret files) and `-e NAME` flags.
   */
  readonly flags: readonly string[];
}

/** The HTTP form: its flags and the principal its API key maps to. */
export interface ImageHttpForm extends ImageForm {
  /** The principal the configuration gives the API key (named in the audit record). */
  readonly principal: string;
}

/** The one real read call both forms make. */
export interface ImageReadCall {
  readonly name: string;
  readonly arguments: Record<string, unknown>;
  /** Checks the successful result (its data, the redaction markers). */
  readonly verify: (result: CallToolResult) => void;
  /** Upstream values (PII) that must not appear in the answer, nor on stdout. */
  readonly pii: RegExp;
  /** The redaction counts the call's audit record must hold (at least these keys). */
  readonly redactions: Readonly<Record<string, number>>;
}

/** What the shared check hands a per-server file's `extra` checks (filled in `beforeAll`). */
export interface ImageCheckContext<U> {
  /** The image tag, e.g. `localhost/hardened-mcp/s3:test`. */
  readonly image: string;
  /** The started upstream. */
  readonly upstream: U;
  /** `podman run` flags of the stdio form: hardening, host networking, its own flags. */
  readonly stdioFlags: readonly string[];
  /** podman's environment: this process's plus {@link ImageCheck.env}. */
  readonly podmanEnv: Readonly<Record<string, string>>;
  /** A fresh container name, removed in `afterAll` whatever happens. */
  containerName(what: string): string;
  /** Starts the stdio form (`podman run -i --rm`) and connects the MCP SDK client to it. */
  connectStdio(): Promise<StdioSession>;
}

/** An MCP SDK client connected to the stdio form of the image. */
export interface StdioSession {
  readonly client: Client;
  /** The container's stderr so far (logs and audit records). */
  stderr(): string;
  /** Protocol errors the client saw. */
  readonly protocolErrors: readonly Error[];
  close(): Promise<void>;
}

/** What a per-server file gives {@link describeImageCheck}. */
export interface ImageCheck<U> {
  /** The directory under `servers/` (and the workspace package `@hardened-mcp/<server>`). */
  readonly server: string;
  /** A word the OCI description label must contain, e.g. `PostgreSQL`. */
  readonly describes: string;
  /** Every tool the image lists over stdio in its configuration, in any order. */
  readonly tools: readonly string[];
  /**
   * Credentials and settings passed as `-e NAME` flags: podman takes each value from its own
   * environment, so no value appears on a command line or in `podman inspect`.
   */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Names of credential variables no image may carry in its configured environment (beside
   * every name in {@link env}), e.g. `/^AWS_/`.
   */
  readonly credentialEnv?: RegExp;
  /** Starts the upstream (database, object store, …) the server reads; stopped in `afterAll`. */
  readonly start: () => Promise<U>;
  /** Stops what {@link start} started. */
  readonly stop: (upstream: U) => Promise<void>;
  /** The stdio form, on host networking: the container reaches 127.0.0.1 as any local process. */
  readonly stdio: (upstream: U, files: ImageCheckFiles) => Promise<ImageForm>;
  /**
   * The HTTP form, on {@link PUBLISHING_NETWORK} (reach the host's loopback through
   * `urlFromContainer`): a configuration with {@link httpServiceConfig} (or the same settings)
   * for the given API key hash.
   */
  readonly http: (
    upstream: U,
    files: ImageCheckFiles,
    apiKeySha256: string,
    publishedPort: number,
  ) => Promise<ImageHttpForm>;
  readonly readCall: ImageReadCall;
  /**
   * Processes besides PID 1 the running server has (e.g. the Postgres server's SQL guard
   * process), each matched against its command line.
   */
  readonly helperProcesses?: readonly RegExp[];
  /** The server's own test-only packages, which must not be in the image. */
  readonly extraDevPackages?: readonly string[];
  /** Budget for what the server's layers add to the runtime base image; default 48 MB. */
  readonly sizeBudgetBytes?: number;
  /** Connector-specific checks: `it(...)` calls, run after the shared ones. */
  readonly extra?: (ctx: ImageCheckContext<U>) => void;
}

/**
 * Declares the container suite of one server image: a `describe` block (skipped, with the
 * reason in its name and on stderr, when podman or the base images are missing) that builds
 * the image in `beforeAll` (with the upstream started alongside) and runs every shared check,
 * then the server's `extra` ones.
 */
export function describeImageCheck<U>(check: ImageCheck<U>): void {
  const { server } = check;
  const dockerfile = `servers/${server}/Dockerfile`;
  const image = `localhost/hardened-mcp/${server}:test`;
  const title = `hardened-mcp-${server}`;
  const sizeBudget = check.sizeBudgetBytes ?? DEFAULT_SIZE_BUDGET_BYTES;
  const env = check.env ?? {};
  /** An API key as an HTTP client holds it; the configuration stores only its SHA-256. */
  const apiKey = `hmcp_test_${randomBytes(24).toString('base64url')}`;
  const podmanEnv: Record<string, string> = {
    ...Object.fromEntries(
      Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    ...env,
  };
  const envFlags = Object.keys(env).flatMap((name) => ['-e', name]);

  const skipReason = containerSkipReason(dockerfile);
  if (skipReason) console.warn(`[containers] ${server}: SKIPPED: ${skipReason}`);

  const names: string[] = [];
  const containerName = (what: string): string => {
    const name = `hmcp-test-${server}-${what}-${process.pid}-${names.length}`;
    names.push(name);
    return name;
  };

  let upstream: U | undefined;
  let filesDir: string | undefined;
  let stdioFlags: string[] = [];
  let httpForm: ImageHttpForm | undefined;
  /** The host port the HTTP form's MCP port is published on (its configuration announces it). */
  let mcpPort = 0;

  const connectStdio = async (): Promise<StdioSession> => {
    const transport = new StdioClientTransport({
      command: 'podman',
      // No arguments after the image: its default CMD, `--config /etc/hardened-mcp/config.yaml`.
      args: ['run', '-i', '--rm', '--name', containerName('stdio'), ...stdioFlags, image],
      env: podmanEnv,
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
      await client.connect(transport);
    } catch (err) {
      await client.close();
      throw new Error(`container failed to start: ${(err as Error).message}\n${stderr}`);
    }
    return { client, stderr: () => stderr, protocolErrors, close: () => client.close() };
  };

  const ctx: ImageCheckContext<U> = {
    image,
    get upstream(): U {
      if (upstream === undefined) throw new Error('the upstream is not started');
      return upstream;
    },
    get stdioFlags() {
      return stdioFlags;
    },
    podmanEnv,
    containerName,
    connectStdio,
  };

  /** The read call's result, checked: success, the server's own checks, no PII. */
  const expectReadAnswer = (r: CallToolResult) => {
    expect(r.isError, textOf(r)).toBeFalsy();
    check.readCall.verify(r);
    expect(textOf(r)).not.toMatch(check.readCall.pii);
  };

  describe.skipIf(skipReason !== undefined)(
    `${server} server image${skipReason ? ` (skipped: ${skipReason})` : ''}`,
    () => {
      beforeAll(async () => {
        const version = (
          JSON.parse(readFileSync(join(REPO_ROOT, 'servers', server, 'package.json'), 'utf8')) as {
            version: string;
          }
        ).version;
        const logDir = mkdtempSync(join(tmpdir(), 'hmcp-image-build-'));
        const started = Date.now();
        const [up, built] = await Promise.allSettled([
          check.start(),
          buildServerImage({
            server,
            dockerfile,
            tag: image,
            buildArgs: { VERSION: version },
            logFile: join(logDir, 'build.log'),
          }),
        ]);
        if (up.status === 'fulfilled') upstream = up.value; // stopped in afterAll either way
        if (built.status === 'rejected') throw built.reason;
        if (up.status === 'rejected') throw up.reason;
        rmSync(logDir, { recursive: true, force: true }); // kept only when the build fails
        console.log(
          `[containers] built ${image} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );

        const dir = mkdtempSync(join(tmpdir(), `hmcp-image-${server}-`));
        filesDir = dir;
        const files: ImageCheckFiles = {
          config(name, text) {
            const file = join(dir, name);
            writeFileSync(file, text, { mode: 0o644 });
            chmodSync(file, 0o644);
            return file;
          },
          async secret(name, value) {
            const file = join(dir, name);
            writeFileSync(file, value, { mode: 0o400 });
            if (process.getuid?.() === 0) chownSync(file, 65532, 65532);
            else await podmanOk(['unshare', 'chown', '65532:65532', file]);
            chmodSync(file, 0o400);
            return file;
          },
        };
        const stdio = await check.stdio(ctx.upstream, files);
        stdioFlags = [...HARDENING, ...HOST_NETWORK, ...stdio.flags, ...envFlags];
        mcpPort = await freePort();
        httpForm = await check.http(ctx.upstream, files, hashApiKey(apiKey), mcpPort);
      }, 900_000);

      afterAll(async () => {
        for (const name of names) await podman(['rm', '-f', '--time', '0', name]);
        if (upstream !== undefined) await check.stop(upstream);
        if (filesDir) rmSync(filesDir, { recursive: true, force: true });
      });

      it('is configured to run as uid 65532 with an exec-form entrypoint, CMD, HEALTHCHECK and OCI labels, and no credential', async () => {
        const [info] = JSON.parse(await podmanOk(['image', 'inspect', image])) as {
          Config: {
            User: string;
            Entrypoint: string[];
            Cmd: string[];
            Env: string[];
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
        // No credential baked in: none of the variables the server is given at run time, and
        // none of the server's credential variables.
        const baked = (info?.Config.Env ?? []).map((e) => e.split('=')[0] ?? '');
        expect(
          baked.filter((name) => name in env || check.credentialEnv?.test(name) === true),
        ).toEqual([]);
        expect(info?.Config.Labels).toMatchObject({
          'org.opencontainers.image.title': title,
          'org.opencontainers.image.licenses': 'Apache-2.0',
          'org.opencontainers.image.source': expect.stringMatching(/^https:\/\//),
          'org.opencontainers.image.description': expect.stringContaining(check.describes),
          'org.opencontainers.image.version': expect.stringMatching(/^\d+\.\d+\.\d+/),
          'org.opencontainers.image.revision': expect.any(String),
          'org.opencontainers.image.base.name': baseImagesOf(dockerfile).runtime,
        });
      });

      it(`adds less than ${sizeBudget / 1e6} MB to the runtime base image`, async () => {
        const { runtime } = baseImagesOf(dockerfile);
        const size = await imageSizeOverBase(image, runtime);
        const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
        console.log(
          `[containers] ${image}: our layers add ${mb(size.added)} (${size.added} bytes) over ` +
            `${runtime} (${mb(size.base)}); image total ${mb(size.image)}; budget ${mb(sizeBudget)}`,
        );
        // Our layers sit on top of the base's, unchanged.
        expect(size.onTopOfBase).toBe(true);
        expect(size.added).toBeGreaterThan(0);
        expect(size.added).toBeLessThan(sizeBudget);
      });

      it('has no shell, package manager, compiler, dev dependency, source map or test file', async () => {
        const sh = await podman(['run', '--rm', '--entrypoint', '/bin/sh', image, '-c', 'true']);
        expect(sh.code).not.toBe(0);

        const entries = await listImageFiles(image);
        const paths = new Set(entries.map((e) => e.path));
        expect(paths).toContain('app/dist/bin.js');
        expect(paths).toContain('nodejs/bin/node');
        expect(FORBIDDEN_IMAGE_PATHS.filter((p) => paths.has(p))).toEqual([]);
        expect(appLeftovers(entries, check.extraDevPackages)).toEqual([]);
        // The server's files belong to root and cannot be changed by the uid it runs as.
        expect(appWritable(entries)).toEqual([]);
      });

      it(`serves MCP over stdio with every hardening flag: initialize, tools/list, a redacted ${check.readCall.name}`, async () => {
        const session = await connectStdio();
        try {
          expect(session.client.getServerVersion()?.name).toBe(title);
          const { tools } = await session.client.listTools();
          expect(tools.map((t) => t.name).sort()).toEqual([...check.tools].sort());

          const r = (await session.client.callTool({
            name: check.readCall.name,
            arguments: check.readCall.arguments,
          })) as CallToolResult;
          expectReadAnswer(r);
          // The audit record went to stderr (never stdout), with the redaction counts.
          const audited = () =>
            auditRecordsIn(session.stderr()).find((a) => a.tool === check.readCall.name);
          await until(async () => audited() !== undefined, 5_000, 'the audit record');
          expect(audited()).toMatchObject({
            outcome: 'success',
            redactions: expect.objectContaining(check.readCall.redactions),
          });
          expect(session.protocolErrors).toEqual([]);
        } finally {
          await session.close();
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
            params: { name: check.readCall.name, arguments: check.readCall.arguments },
          },
        ];
        const child = spawn(
          'podman',
          ['run', '-i', '--rm', '--name', containerName('raw'), ...stdioFlags, image],
          { stdio: ['pipe', 'pipe', 'pipe'], env: podmanEnv },
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
          `the answer to ${check.readCall.name}`,
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
        expect(stdout).not.toMatch(check.readCall.pii);
        // Logs and audit records went to stderr.
        expect(stderr).toContain('ready on stdio');
        expect(stderr).toContain(`"tool":"${check.readCall.name}"`);
      });

      it('runs as uid 65532 with no capabilities, is healthy over stdio, and exits 0 within seconds of SIGTERM', async () => {
        const name = containerName('sigterm');
        // Detached with stdin kept open (`-d -i`): the server waits for a client until signalled.
        await podmanOk(['run', '-d', '-i', '--name', name, ...stdioFlags, image], {
          env: podmanEnv,
        });
        await until(
          async () => (await podman(['logs', name])).stderr.includes('ready on stdio'),
          30_000,
          'the server to be ready',
        );
        // Credentials came in through the environment (`-e NAME`), never on the command line.
        const created = await podmanOk([
          'inspect',
          '--format',
          '{{json .Config.CreateCommand}}',
          name,
        ]);
        for (const [key, value] of Object.entries(env)) {
          expect(created).not.toContain(`${key}=`);
          if (value.length >= 8) expect(created).not.toContain(value);
        }

        const top = (await podmanOk(['top', name, 'user', 'huser', 'capeff', 'args']))
          .trim()
          .split('\n');
        const helpers = check.helperProcesses ?? [];
        // header + PID 1 (the server) + its helper processes, nothing else
        expect(top).toHaveLength(2 + helpers.length);
        const rows = top.slice(1).map((line) => line.trim().split(/\s+/));
        for (const row of rows) {
          expect(row.slice(0, 3)).toEqual([
            'nonroot',
            process.getuid?.() === 0 ? '65532' : expect.any(String),
            'none',
          ]);
        }
        const commands = rows.map((row) => row.slice(3).join(' '));
        expect(commands[0]).toMatch(/^\/nodejs\/bin\/node \/app\/dist\/bin\.js/);
        for (const helper of helpers) expect(commands.some((c) => helper.test(c))).toBe(true);

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
        expect(status).toMatch(/^CapPrm:\s+0+$/m);
        if (process.getuid?.() === 0)
          expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);

        const started = Date.now();
        await podmanOk(['kill', '--signal', 'TERM', name]);
        const code = (await podmanOk(['wait', name], { timeoutMs: 15_000 })).trim();
        console.log(`[containers] ${server}: SIGTERM → exit ${code} in ${Date.now() - started} ms`);
        expect(code).toBe('0'); // podman wait above gives up after 15 s
      });

      it('serves Streamable HTTP with an API key through a published port, with a working HEALTHCHECK', async () => {
        if (!httpForm) throw new Error('the HTTP form is not set up');
        const name = containerName('http');
        const managementPort = await freePort();
        const started = Date.now();
        // No arguments after the image: its default CMD (`--config /etc/hardened-mcp/config.yaml`).
        await podmanOk(
          [
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
            ...httpForm.flags,
            ...envFlags,
            image,
          ],
          { env: podmanEnv },
        );
        const logs = async () => (await podman(['logs', name])).stderr;
        await until(
          async () => (await logs()).includes(' listening on '),
          30_000,
          'the HTTP server to listen',
        );
        console.log(`[containers] ${server}: HTTP listening after ${Date.now() - started} ms`);
        const url = `http://127.0.0.1:${mcpPort}/mcp`;

        // No key, or a wrong one: 401 before anything reaches MCP.
        const anonymous = await mcpPost(url, initializeBody());
        expect(anonymous.status, anonymous.text).toBe(401);
        expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/);
        const wrong = await mcpPost(url, initializeBody(), { token: `${apiKey}x` });
        expect(wrong.status, wrong.text).toBe(401);

        const { client } = await connectHttpClient(
          url,
          { Authorization: `Bearer ${apiKey}` },
          'hardened-mcp-container-test',
        );
        try {
          expect(client.getServerVersion()?.name).toBe(title);
          const r = (await client.callTool({
            name: check.readCall.name,
            arguments: check.readCall.arguments,
          })) as CallToolResult;
          expectReadAnswer(r);
        } finally {
          await client.close();
        }
        // The audit record names the key's principal and the transport, and counts redactions.
        const principal = httpForm.principal;
        const audited = async () =>
          auditRecordsIn(await logs()).find(
            (a) => a.tool === check.readCall.name && a.principal === principal,
          );
        await until(async () => (await audited()) !== undefined, 5_000, 'the audit record');
        expect(await audited()).toMatchObject({
          roles: ['reader'],
          transport: 'http',
          outcome: 'success',
          redactions: expect.objectContaining(check.readCall.redactions),
        });

        // The image's HEALTHCHECK, run inside the container, probes /healthz on the management
        // listener named in the mounted configuration.
        const hc = await podman(['healthcheck', 'run', name], { timeoutMs: 30_000 });
        expect(hc.code, hc.stdout + hc.stderr).toBe(0);
        expect(
          (await podmanOk(['inspect', '--format', '{{.State.Health.Status}}', name])).trim(),
        ).toBe('healthy');
        // Readiness (the upstream answers) through the published management port.
        const ready = await fetch(`http://127.0.0.1:${managementPort}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toEqual({ status: 'ready' });

        const stopping = Date.now();
        await podmanOk(['kill', '--signal', 'TERM', name]);
        const code = (await podmanOk(['wait', name], { timeoutMs: 30_000 })).trim();
        console.log(
          `[containers] ${server}: HTTP: SIGTERM → exit ${code} in ${Date.now() - stopping} ms`,
        );
        expect(code).toBe('0');
      });

      check.extra?.(ctx);
    },
  );
}
