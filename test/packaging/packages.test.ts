/**
 * The packages as users install them: every publishable workspace package is packed with
 * `pnpm pack` (which rewrites `workspace:` ranges to versions), the tarballs are installed with
 * plain `npm` into an empty folder outside the workspace, and each server is started the way an
 * MCP client configuration starts it, `npx -y @hardened-mcp/<name>` (`--offline`, so npx can only
 * use what was installed, never fetch a published package of the same name), and driven over stdio
 * by the MCP SDK client: `tools/list` and one real call, the Postgres server against the test kit's
 * PostgreSQL, the S3 server against the local S3-compatible store (fauxqs), the Jira server
 * against the test kit's Jira fake.
 *
 * Each server runs on every Node.js at hand: the repository's Node 24 and the system's `node`
 * when its major differs (Node 20 on these machines): the packages declare `engines.node >=20.19`.
 * Anything a bin needs that lives only in the workspace (a file outside `files`, a dev-only
 * dependency, an undeclared import) fails here. Cost: one `npm install` (tens of seconds, from
 * npm's cache after the first run) and four short stdio sessions.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import {
  createChinookDatabase,
  type JiraFake,
  startJiraFake,
  startTestPostgres,
} from '@hardened-mcp/test-kit';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStore, TEST_AWS_ENV, type TestStore } from '../s3/support.ts';
import { REPO_ROOT, textOf } from '../support/server.ts';

type Manifest = {
  name: string;
  version: string;
  private?: boolean;
  bin?: Record<string, string>;
  files?: string[];
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  publishConfig?: Record<string, unknown>;
};

/** The workspace packages that are not private: what the release workflow publishes. */
const PUBLISHABLE = ['packages', 'servers'].flatMap((group) =>
  readdirSync(join(REPO_ROOT, group))
    .map((dir) => join(REPO_ROOT, group, dir))
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: readJson(join(dir, 'package.json')) as Manifest }))
    .filter(({ manifest }) => manifest.private !== true),
);

const work = mkdtempSync(join(tmpdir(), 'hmcp-packaging-'));
const tarballs = join(work, 'tarballs');
/** The empty folder the tarballs are installed into, as a user's project would be. */
const project = join(work, 'project');

/** The Node.js binaries to run the bins with: this process's (24) and the system's, if another major. */
const NODES = nodesAtHand();

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function nodesAtHand(): { label: string; dir: string; version: string }[] {
  const out = [
    {
      label: `node ${process.versions.node}`,
      dir: dirname(process.execPath),
      version: process.versions.node,
    },
  ];
  const major = (v: string) => v.split('.')[0];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    // pnpm puts node_modules/.bin first; its `node` is the workspace's wrapper, not a system Node.
    if (!dir || dir.includes('node_modules') || !existsSync(join(dir, 'node'))) continue;
    const version = execFileSync(join(dir, 'node'), ['-p', 'process.versions.node'], {
      encoding: 'utf8',
    }).trim();
    if (major(version) !== major(process.versions.node)) {
      out.push({ label: `node ${version} (system)`, dir, version });
    }
    break;
  }
  return out;
}

/** `npm`/`npx` from the system PATH (never a node_modules/.bin shim). */
function systemPath(nodeDir: string): string {
  const rest = (process.env.PATH ?? '').split(delimiter).filter((d) => !d.includes('node_modules'));
  return [nodeDir, ...rest].join(delimiter);
}

/** The package names a built file imports (static `import … from`, `import()`, `export … from`). */
function importedPackages(source: string): string[] {
  const specifiers = [
    ...source.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g),
    ...source.matchAll(/(?:^|[\s;(=])import\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...source.matchAll(/(?:^|[\s;])import\s*['"]([^'"]+)['"]/g),
  ].map((m) => m[1] as string);
  return specifiers
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) =>
      s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string),
    );
}

/** Lists a tarball's files (without the `package/` prefix). */
function tarballFiles(tgz: string): string[] {
  return execFileSync('tar', ['-tzf', tgz], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
}

/**
 * Starts a server with `npx --offline -y <package> …args` in the user's project folder, on the
 * given Node.js, and connects the MCP SDK client over stdio.
 */
async function startWithNpx(
  pkg: string,
  nodeDir: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: join(nodeDir, 'node'),
    args: [npxCli(), '--offline', '-y', pkg, ...args],
    cwd: project,
    env: {
      PATH: systemPath(nodeDir),
      HOME: process.env.HOME ?? '/tmp',
      npm_config_update_notifier: 'false',
      ...env,
    },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const client = new Client({ name: 'hardened-mcp-packaging', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (err) {
    throw new Error(`${pkg} did not start: ${(err as Error).message}\n${stderr}`);
  }
  return { client, stderr: () => stderr };
}

/** The Node.js version a bin started by npx in the project gets (its `#!/usr/bin/env node`). */
function nodeSeenByNpx(nodeDir: string): string {
  return execFileSync(
    join(nodeDir, 'node'),
    [npxCli(), '--offline', '-c', 'node -p process.versions.node'],
    {
      cwd: project,
      encoding: 'utf8',
      env: { PATH: systemPath(nodeDir), HOME: process.env.HOME ?? '/tmp' },
    },
  ).trim();
}

/** Runs `npx --offline …args` in the project on the given Node.js and returns its exit and output. */
function runNpx(
  nodeDir: string,
  args: string[],
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(nodeDir, 'node'), [npxCli(), '--offline', ...args], {
    cwd: project,
    encoding: 'utf8',
    env: { PATH: systemPath(nodeDir), HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The npx CLI script of the system's npm (run with the chosen node, whatever its shebang says). */
function npxCli(): string {
  const npx = execFileSync('sh', ['-c', 'command -v npx'], {
    encoding: 'utf8',
    env: { PATH: systemPath(NODES[NODES.length - 1]?.dir ?? '') },
  }).trim();
  const real = execFileSync('readlink', ['-f', npx], { encoding: 'utf8' }).trim();
  return real;
}

describe('the published packages', () => {
  let installed = false;

  beforeAll(() => {
    for (const { dir, manifest } of PUBLISHABLE) {
      expect(existsSync(join(dir, 'dist')), `${manifest.name} is not built: run pnpm build`).toBe(
        true,
      );
    }
    execFileSync('mkdir', ['-p', tarballs, project]);
    for (const { dir } of PUBLISHABLE) {
      execFileSync('pnpm', ['pack', '--pack-destination', tarballs], { cwd: dir, stdio: 'pipe' });
    }
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'user-project', private: true }),
    );
    const tgzs = readdirSync(tarballs).map((f) => join(tarballs, f));
    // The system's npm, as a user would run it, outside the workspace.
    execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=error', ...tgzs],
      {
        cwd: project,
        stdio: 'pipe',
        env: {
          PATH: systemPath(NODES[NODES.length - 1]?.dir ?? ''),
          HOME: process.env.HOME ?? '/tmp',
        },
        timeout: 300_000,
      },
    );
    installed = true;
  }, 360_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('finds the packages to publish', () => {
    expect(PUBLISHABLE.map((p) => p.manifest.name).sort()).toEqual([
      '@hardened-mcp/core',
      '@hardened-mcp/jira',
      '@hardened-mcp/postgres',
      '@hardened-mcp/s3',
      '@hardened-mcp/slack',
    ]);
  });

  for (const { manifest } of PUBLISHABLE) {
    it(`${manifest.name}: the tarball holds its bins, declares every import and nothing from the workspace`, () => {
      const tgz = readdirSync(tarballs).find((f) =>
        f.startsWith(`${manifest.name.replace('@', '').replace('/', '-')}-${manifest.version}`),
      );
      expect(tgz, 'tarball').toBeDefined();
      const files = tarballFiles(join(tarballs, tgz as string));
      const packed = readJson(
        join(project, 'node_modules', ...manifest.name.split('/'), 'package.json'),
      ) as Manifest;
      expect(JSON.stringify(packed)).not.toContain('workspace:');
      expect(packed.engines?.node).toBe('>=20.19');
      expect(packed.publishConfig).toMatchObject({ access: 'public', provenance: true });
      for (const bin of Object.values(packed.bin ?? {})) {
        expect(files).toContain(bin.replace(/^\.\//, ''));
      }
      expect(files).toContain('README.md');
      expect(files.filter((f) => /\.test\.|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
      const declared = new Set(Object.keys(packed.dependencies ?? {}));
      const imported = new Set(
        files
          .filter((f) => f.endsWith('.js'))
          .flatMap((f) =>
            importedPackages(
              readFileSync(join(project, 'node_modules', ...manifest.name.split('/'), f), 'utf8'),
            ),
          ),
      );
      expect(imported.size).toBeGreaterThan(0);
      for (const name of imported)
        expect(declared, `${manifest.name} imports ${name}`).toContain(name);
    });
  }

  for (const node of NODES) {
    it(`every bin of every package starts from the installed package on ${node.label} (--help)`, () => {
      expect(installed).toBe(true);
      for (const { manifest } of PUBLISHABLE) {
        for (const bin of Object.keys(manifest.bin ?? {})) {
          const r = runNpx(node.dir, ['-p', manifest.name, bin, '--help']);
          expect(r.status, `${bin}: ${r.stderr}`).toBe(0);
          expect(r.stdout + r.stderr, bin).toMatch(new RegExp(`usage: ${bin}`));
        }
      }
    });
  }

  describe('@hardened-mcp/postgres via npx', () => {
    let pg: Awaited<ReturnType<typeof startTestPostgres>>;
    let db: Awaited<ReturnType<typeof createChinookDatabase>>;
    beforeAll(async () => {
      pg = await startTestPostgres();
      db = await createChinookDatabase(pg);
    });
    afterAll(async () => {
      await db?.drop();
      await pg?.stop();
    });

    for (const node of NODES) {
      it(`lists its tools and answers a query on ${node.label}`, async () => {
        expect(installed).toBe(true);
        expect(nodeSeenByNpx(node.dir)).toBe(node.version);
        const config = join(work, 'postgres.json');
        const auditFile = join(work, `audit-${node.version}.jsonl`);
        writeFileSync(
          config,
          JSON.stringify({ postgres: { schemas: ['public'] }, audit: { file: auditFile } }),
          { mode: 0o600 },
        );
        const s = await startWithNpx('@hardened-mcp/postgres', node.dir, ['--config', config], {
          POSTGRES_URL: db.readUrl,
        });
        try {
          const tools = (await s.client.listTools()).tools.map((t) => t.name);
          expect(tools).toEqual(expect.arrayContaining(['postgres_query', 'postgres_list_tables']));
          const r = await s.client.callTool({
            name: 'postgres_query',
            arguments: { sql: 'SELECT name FROM artist WHERE artist_id = 1' },
          });
          expect(r.isError, textOf(r)).toBeFalsy();
          expect(textOf(r)).toContain('AC/DC');
          const version = await s.client.getServerVersion();
          expect(version?.version).toBe(
            (readJson(join(REPO_ROOT, 'servers', 'postgres', 'package.json')) as Manifest).version,
          );
        } finally {
          await s.client.close();
        }
        // The core's bin, as installed: the call above left a hash-chained audit file.
        const verified = runNpx(node.dir, ['hardened-mcp-audit', 'verify', auditFile]);
        expect(verified.status, verified.stderr).toBe(0);
        expect(verified.stdout).toMatch(/^ok: [1-9]\d* records, chain intact/);
      });
    }
  });

  describe('@hardened-mcp/s3 via npx', () => {
    let store: TestStore;
    beforeAll(async () => {
      store = await startTestStore();
      await store.createBucket('acme-reports');
      await store.put('acme-reports', 'reports/q1.txt', 'revenue up 12%', 'text/plain');
    });
    afterAll(async () => {
      await store?.stop();
    });

    for (const node of NODES) {
      it(`lists its tools and reads an object on ${node.label}`, async () => {
        expect(installed).toBe(true);
        expect(nodeSeenByNpx(node.dir)).toBe(node.version);
        const config = join(work, 's3.json');
        writeFileSync(
          config,
          JSON.stringify({
            s3: {
              endpoint: store.endpoint,
              forcePathStyle: true,
              buckets: [{ name: 'acme-reports', prefixes: ['reports/'] }],
            },
          }),
          { mode: 0o600 },
        );
        const s = await startWithNpx('@hardened-mcp/s3', node.dir, ['--config', config], {
          ...TEST_AWS_ENV,
          AWS_EC2_METADATA_DISABLED: 'true',
          // Only the keys above: never a profile of the machine's user.
          AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
          AWS_CONFIG_FILE: '/nonexistent',
        });
        try {
          const tools = (await s.client.listTools()).tools.map((t) => t.name);
          expect(tools).toEqual(expect.arrayContaining(['s3_list_objects', 's3_get_object']));
          const r = await s.client.callTool({
            name: 's3_get_object',
            arguments: { bucket: 'acme-reports', key: 'reports/q1.txt' },
          });
          expect(r.isError, textOf(r)).toBeFalsy();
          expect(JSON.stringify(r.content)).toContain('revenue up 12%');
        } finally {
          await s.client.close();
        }
      });
    }
  });

  describe('@hardened-mcp/jira via npx', () => {
    let fake: JiraFake;
    beforeAll(async () => {
      fake = await startJiraFake({ tokens: ['jira-packaging-token-01'] });
    });
    afterAll(async () => {
      await fake?.stop();
    });

    for (const node of NODES) {
      it(`lists its tools and reads an issue on ${node.label}`, async () => {
        expect(installed).toBe(true);
        expect(nodeSeenByNpx(node.dir)).toBe(node.version);
        const config = join(work, 'jira.json');
        writeFileSync(
          config,
          JSON.stringify({ jira: { site: fake.url, projects: { read: ['SUP'] } } }),
          { mode: 0o600 },
        );
        const s = await startWithNpx('@hardened-mcp/jira', node.dir, ['--config', config], {
          JIRA_API_TOKEN: 'jira-packaging-token-01',
          JIRA_EMAIL: 'bot@example.com',
        });
        try {
          const tools = (await s.client.listTools()).tools.map((t) => t.name);
          expect(tools).toEqual(expect.arrayContaining(['jira_search_issues', 'jira_get_issue']));
          const r = await s.client.callTool({
            name: 'jira_get_issue',
            arguments: { key: 'SUP-3' },
          });
          expect(r.isError, textOf(r)).toBeFalsy();
          expect(textOf(r)).toContain('Invoice PDF shows wrong VAT rate');
        } finally {
          await s.client.close();
        }
      });
    }
  });
});
