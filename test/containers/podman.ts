/**
 * Helpers for the container suites: find out whether podman and the base images are there,
 * build a server image, run podman commands, list an image's files.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/server.ts';

/** The hardening flags every `podman run` of a server image in these suites uses. */
export const HARDENING = [
  '--read-only',
  // podman (unlike docker) mounts tmpfs on /tmp, /var/tmp and /run under --read-only unless told
  // not to: without them the server proves it needs no writable path at all.
  '--read-only-tmpfs=false',
  '--cap-drop=ALL',
  '--security-opt',
  'no-new-privileges',
] as const;

/**
 * Host networking, for the stdio suites: the container reaches the test PostgreSQL on
 * 127.0.0.1 as any local process would, and listens on nothing.
 */
export const HOST_NETWORK = ['--network', 'host'] as const;

/**
 * The network of a container that publishes ports (`-p`, which host networking rules out) and
 * still reaches the test PostgreSQL, which listens on the host's 127.0.0.1 only (the embedded
 * one always; the machine's own usually too). Podman's default bridge reaches the host only on
 * its bridge address, where nothing listens; slirp4netns with `allow_host_loopback` maps
 * {@link HOST_LOOPBACK_FROM_CONTAINER} to the host's loopback, and forwards published ports.
 */
export const PUBLISHING_NETWORK = ['--network', 'slirp4netns:allow_host_loopback=true'] as const;

/** The host's 127.0.0.1 as seen from a container on {@link PUBLISHING_NETWORK}. */
export const HOST_LOOPBACK_FROM_CONTAINER = '10.0.2.2';

/**
 * `url` with a loopback host (`127.0.0.1`, `localhost`, `::1`) replaced by
 * {@link HOST_LOOPBACK_FROM_CONTAINER}, for a container on {@link PUBLISHING_NETWORK}; any other
 * host is reachable from the container as it is, and stays.
 */
export function urlFromContainer(url: string): string {
  const u = new URL(url);
  if (['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
    u.hostname = HOST_LOOPBACK_FROM_CONTAINER;
  }
  return u.toString();
}

/** The base images a server Dockerfile names in its `ARG BUILD_IMAGE` / `ARG RUNTIME_IMAGE`. */
export function baseImagesOf(dockerfile: string): { build: string; runtime: string } {
  const text = readFileSync(join(REPO_ROOT, dockerfile), 'utf8');
  const arg = (name: string): string => {
    const m = new RegExp(`^ARG ${name}=(\\S+)`, 'm').exec(text);
    if (!m?.[1]) throw new Error(`${dockerfile} has no ARG ${name}=...`);
    return m[1];
  };
  return { build: arg('BUILD_IMAGE'), runtime: arg('RUNTIME_IMAGE') };
}

/**
 * Why the container suites cannot run here, or `undefined` when they can: podman missing or
 * not working, or a base image missing (this machine reaches no container registry; the base
 * images are built locally by `shared/tools/container-base-images.sh`, which CI runs first).
 */
export function containerSkipReason(dockerfile: string): string | undefined {
  const setup = 'run `bash ../shared/tools/container-base-images.sh` as root to set it up';
  try {
    execFileSync('podman', ['--version'], { stdio: 'pipe' });
  } catch {
    return `podman is not installed (${setup})`;
  }
  try {
    execFileSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], {
      stdio: 'pipe',
      timeout: 30_000,
    });
  } catch (err) {
    return `podman does not work here: ${firstLine((err as { stderr?: Buffer }).stderr)}`;
  }
  const { build, runtime } = baseImagesOf(dockerfile);
  for (const image of [build, runtime]) {
    try {
      execFileSync('podman', ['image', 'exists', image], { stdio: 'pipe' });
    } catch {
      return `base image ${image} is missing (${setup})`;
    }
  }
  return undefined;
}

function firstLine(buf: Buffer | undefined): string {
  return (buf?.toString('utf8') ?? '').trim().split('\n')[0] ?? 'unknown error';
}

/** Result of {@link podman}. */
export interface PodmanResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link podman} and {@link podmanOk}. */
export interface PodmanOptions {
  /** Killed (SIGKILL) after this long; default 60 s. */
  readonly timeoutMs?: number;
  /**
   * The environment of the podman process (default: this process's), e.g. for `-e NAME`
   * arguments, which take the value from it and keep it out of the command line.
   */
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs `podman ...args` to completion (never rejects on a non-zero exit). */
export function podman(args: readonly string[], opts: PodmanOptions = {}) {
  return new Promise<PodmanResult>((resolve, reject) => {
    const child = spawn('podman', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.env ? { env: opts.env } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like {@link podman}, but rejects with the command's stderr unless it exits 0; returns stdout. */
export async function podmanOk(args: readonly string[], opts: PodmanOptions = {}) {
  const r = await podman(args, opts);
  if (r.code !== 0) {
    throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(-2000)}`);
  }
  return r.stdout;
}

/**
 * Builds `servers/<server>/Dockerfile` from the repository root the way CI and the docs do,
 * in the docker image format (which keeps HEALTHCHECK), with no registry access for images
 * (`--pull=never`), and tags it `tag`. podman caches the
 * layers, so an unchanged tree rebuilds in seconds. Output goes to `logFile`; on failure the
 * error carries its tail.
 *
 * The build stage is tagged too (`<tag>-build`), so that its cache survives while the stale
 * images of earlier builds of this server (untagged, with the server's labels) are pruned: each
 * source change would otherwise leave the better part of a gigabyte behind.
 */
export async function buildServerImage(opts: {
  readonly server: string;
  readonly dockerfile: string;
  readonly tag: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly logFile: string;
}): Promise<void> {
  const log = createWriteStream(opts.logFile);
  try {
    const common = [
      'build',
      '--pull=never',
      // podman's default OCI image format has no place for HEALTHCHECK (it is dropped with a
      // warning); the docker format keeps it, as `docker build` does.
      '--format',
      'docker',
      '--isolation',
      'chroot',
      '--network',
      'host',
      '-f',
      opts.dockerfile,
      ...Object.entries(opts.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    ];
    await run([...common, '--target', 'build', '-t', `${opts.tag}-build`, '.'], log, opts.logFile);
    await run([...common, '-t', opts.tag, '.'], log, opts.logFile);
  } finally {
    log.end();
  }
  for (const label of [
    `org.hardened-mcp.build-stage=${opts.server}`,
    `org.opencontainers.image.title=hardened-mcp-${opts.server}`,
  ]) {
    await podman(['image', 'prune', '--force', '--filter', `label=${label}`]);
  }
}

function run(args: string[], log: NodeJS.WritableStream, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => {
      tail = (tail + d.toString('utf8')).slice(-6000);
      log.write(d);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`podman ${args.join(' ')} exited ${code} (log: ${logFile}):\n${tail}`));
    });
  });
}

/** One entry of an image's file system, from `tar -tv --numeric-owner` of `podman export`. */
export interface ImageEntry {
  /** Path without a leading `./` or `/`, e.g. `app/dist/bin.js`. */
  readonly path: string;
  /** `ls -l` style mode, e.g. `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`. */
  readonly mode: string;
  /** `uid/gid`, e.g. `0/0`. */
  readonly owner: string;
}

/** Lists every file of an image (a container is created, exported to a tar file, removed). */
export async function listImageFiles(image: string): Promise<ImageEntry[]> {
  const id = (await podmanOk(['create', image])).trim();
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-image-export-'));
  try {
    // To a file: `podman export` cannot write to a socket (node's stdio pipes).
    const tar = join(dir, 'rootfs.tar');
    await podmanOk(['export', '-o', tar, id], { timeoutMs: 120_000 });
    const listing = execFileSync('tar', ['-tvf', tar, '--numeric-owner'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    return listing
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((line) => {
        // -rw-r--r-- 0/0    1234 2026-01-01 00:00 ./app/dist/bin.js[ -> target]
        const m = /^(\S+)\s+(\d+\/\d+)\s+\d+\s+\S+\s+\S+\s+(.*?)(?: -> .*)?$/.exec(line);
        if (!m) throw new Error(`cannot parse tar listing line: ${line}`);
        return {
          mode: m[1] ?? '',
          owner: m[2] ?? '',
          path: (m[3] ?? '').replace(/^\.?\//, '').replace(/\/$/, ''),
        };
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await podman(['rm', '-f', id]);
  }
}

/** Polls `check` every 200 ms until it returns true, for at most `ms`. */
export async function until(check: () => Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What {@link imageSizeOverBase} measures. */
export interface ImageSize {
  /** Bytes our layers add on top of the base image's. */
  readonly added: number;
  readonly image: number;
  readonly base: number;
  /** The image's first layers are exactly the base image's (ours only sit on top). */
  readonly onTopOfBase: boolean;
}

/** The size of `image` over `base` (both local), from `podman image inspect`. */
export async function imageSizeOverBase(image: string, base: string): Promise<ImageSize> {
  type Inspect = { Size: number; RootFS: { Layers: string[] } };
  const [img] = JSON.parse(await podmanOk(['image', 'inspect', image])) as Inspect[];
  const [b] = JSON.parse(await podmanOk(['image', 'inspect', base])) as Inspect[];
  if (!img || !b) throw new Error('image inspect returned nothing');
  const baseLayers = b.RootFS.Layers;
  return {
    added: img.Size - b.Size,
    image: img.Size,
    base: b.Size,
    onTopOfBase:
      JSON.stringify(img.RootFS.Layers.slice(0, baseLayers.length)) === JSON.stringify(baseLayers),
  };
}

/** Shells, package managers and compilers: none of them may be in a server image. */
export const FORBIDDEN_IMAGE_PATHS: readonly string[] = [
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

/** Development packages no server image may hold (a server's own test-only ones are extra). */
const DEV_PACKAGES = [
  'typescript',
  '@types',
  'vitest',
  'vite',
  '@biomejs',
  'turbo',
  '@hardened-mcp+test-kit',
  '@hardened-mcp/test-kit',
];

/**
 * The paths under `/app` that should not be there: source maps, TypeScript sources and build
 * info, `.env` files, test files, the dependencies' tests, examples and benchmarks, development
 * packages (`extraDevPackages`: a server's own test-only ones, as `name` or `@scope/name` and
 * its pnpm directory form `@scope+name`), and `src/`, `test/` or `chinook/` (the test data set)
 * outside `node_modules`.
 */
export function appLeftovers(
  entries: readonly ImageEntry[],
  extraDevPackages: readonly string[] = [],
): string[] {
  const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const dev = new RegExp(
    `/node_modules/(\\.pnpm/)?(${[...DEV_PACKAGES, ...extraDevPackages].map(literal).join('|')})\\b`,
  );
  return entries
    .map((e) => e.path)
    .filter((p) => p === 'app' || p.startsWith('app/'))
    .filter(
      (p) =>
        /\.(map|ts|cts|mts|tsbuildinfo)$/.test(p) ||
        /(^|\/)\.env(\.|$)/.test(p) ||
        /\.(test|spec)\.[cm]?js$/.test(p) ||
        /\/node_modules\/(@[^/]+\/)?[^/]+\/(test|tests|__tests__|examples?|benchmarks?)\//.test(
          p,
        ) ||
        dev.test(p) ||
        /(^|\/)(src|test|chinook)\//.test(p.replace(/^app\/node_modules\/.*$/, '')),
    );
}

/**
 * The entries under `/app` that the server's uid could change: not owned by root, or (other
 * than symbolic links) writable by group or others. Formatted `mode owner path`.
 */
export function appWritable(entries: readonly ImageEntry[]): string[] {
  return entries
    .filter((e) => e.path === 'app' || e.path.startsWith('app/'))
    .filter((e) => e.owner !== '0/0' || (!e.mode.startsWith('l') && /^.{5}w|^.{8}w/.test(e.mode)))
    .map((e) => `${e.mode} ${e.owner} ${e.path}`);
}
