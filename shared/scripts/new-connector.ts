/**
 * `pnpm new-connector NAME [--out DIR] [--no-install]`: creates a new connector from
 * `servers/example` — package, bin, Dockerfile, README and tests — with every name changed:
 *
 * | in the example            | for `demo-thing`                 |
 * | ------------------------- | -------------------------------- |
 * | `@hardened-mcp/example`   | `@hardened-mcp/demo-thing`       |
 * | `hardened-mcp-example`    | `hardened-mcp-demo-thing`        |
 * | `servers/example`         | `servers/demo-thing`             |
 * | `EXAMPLE_…` (env names)   | `DEMO_THING_…`                   |
 * | `Example…` (identifiers)  | `DemoThing…`                     |
 * | `example` (connector id)  | `demothing` (tool prefix, scope prefix, config key) |
 *
 * The connector id is NAME without dashes, because tool names are `<connector>_<verb>_<noun>`.
 * `example.com`/`example.org` addresses in the seed data are kept (RFC 2606 documentation domains).
 * Without `--out` it writes `servers/NAME`, then runs `pnpm install` (to link the workspace
 * package) and builds it; the new server's tests pass untouched (`pnpm --filter … test`).
 *
 * Exit codes: 0 done; 1 failure (one line on stderr); 2 usage error.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TEMPLATE = join(REPO, 'servers', 'example');
/** What is copied from the template (build output and installed packages are not). */
const COPIED = [
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'Dockerfile',
  'README.md',
  'src',
];

/** The spellings of a connector name. */
export interface ConnectorNames {
  /** `demo-thing`: package, bin and folder name. */
  readonly name: string;
  /** `demothing`: connector id (tool prefix, scope prefix, config key). */
  readonly id: string;
  /** `DemoThing`: identifiers. */
  readonly pascal: string;
  /** `DEMO_THING`: environment variables. */
  readonly upper: string;
}

/**
 * The spellings of NAME.
 *
 * @throws Error when NAME is not lower-case letters, digits and single dashes, starting with a
 *   letter, at most 32 characters, or is `example` itself.
 */
export function namesOf(name: string): ConnectorNames {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(name) || name.length > 32)
    throw new Error(
      `${name} is not a connector name: lower-case letters, digits and dashes, e.g. demo-thing`,
    );
  if (name === 'example') throw new Error('example is the template itself');
  const parts = name.split('-');
  return {
    name,
    id: parts.join(''),
    pascal: parts.map((p) => p[0]?.toUpperCase() + p.slice(1)).join(''),
    upper: parts.join('_').toUpperCase(),
  };
}

/** The Dockerfile's per-server lines: `ARG SERVER`, `ARG DESCRIPTION` and the build comment. */
export function renameDockerfile(text: string, names: ConnectorNames): string {
  return text
    .split('\n')
    .map((line) =>
      /^ARG (SERVER|DESCRIPTION)=|docker build -f servers\//.test(line)
        ? line
            .replaceAll('servers/example', `servers/${names.name}`)
            .replaceAll('hardened-mcp/example', `hardened-mcp/${names.name}`)
            .replace('ARG SERVER=example', `ARG SERVER=${names.name}`)
            .replace(
              /^ARG DESCRIPTION=.*$/,
              `ARG DESCRIPTION="The ${names.name} connector, built on the hardened-mcp core."`,
            )
        : line,
    )
    .join('\n');
}

/** Rewrites one file of the template for `names`. */
export function rename(text: string, names: ConnectorNames): string {
  const keep = new Map<string, string>();
  let n = 0;
  const protect = (s: string) =>
    s.replace(/\bexample\.(com|org|net)\b/g, (m) => {
      const token = `\u0000${n++}\u0000`;
      keep.set(token, m);
      return token;
    });
  let out = protect(text)
    .replaceAll('@hardened-mcp/example', `@hardened-mcp/${names.name}`)
    .replaceAll('hardened-mcp-example', `hardened-mcp-${names.name}`)
    .replaceAll('servers/example', `servers/${names.name}`)
    .replaceAll('ARG SERVER=example', `ARG SERVER=${names.name}`)
    .replaceAll('EXAMPLE_', `${names.upper}_`)
    .replaceAll('Example', names.pascal)
    // `example` as a word or an identifier prefix (exampleConnector), never `examples`.
    .replace(/\bexample(?!s\b)/g, names.id);
  for (const [token, original] of keep) out = out.replaceAll(token, original);
  return out;
}

async function* files(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else yield path;
  }
}

/**
 * Copies the template to `out` with every name changed.
 *
 * @throws Error when `out` exists already.
 */
export async function createConnector(names: ConnectorNames, out: string): Promise<void> {
  if (existsSync(out)) throw new Error(`${relative(process.cwd(), out) || out} exists already`);
  for (const entry of COPIED)
    await cp(join(TEMPLATE, entry), join(out, entry), { recursive: true });
  for await (const file of files(out)) {
    const text = await readFile(file, 'utf8');
    // The Dockerfile is the shape every server shares: only its per-server lines change.
    await writeFile(
      file,
      basename(file) === 'Dockerfile' ? renameDockerfile(text, names) : rename(text, names),
    );
  }
}

function run(command: string, args: readonly string[]): void {
  const r = spawnSync(command, args, { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed`);
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { out: { type: 'string' }, 'no-install': { type: 'boolean' } },
    });
  } catch (err) {
    process.stderr.write(
      `new-connector: ${(err as Error).message}\nusage: pnpm new-connector NAME [--out DIR] [--no-install]\n`,
    );
    return 2;
  }
  const [name, ...extra] = parsed.positionals;
  if (name === undefined || extra.length > 0) {
    process.stderr.write('usage: pnpm new-connector NAME [--out DIR] [--no-install]\n');
    return 2;
  }
  try {
    const names = namesOf(name);
    const out =
      typeof parsed.values.out === 'string'
        ? resolve(parsed.values.out)
        : join(REPO, 'servers', names.name);
    await createConnector(names, out);
    process.stderr.write(
      `created ${out} (connector id ${names.id}, bin hardened-mcp-${names.name})\n`,
    );
    if (parsed.values.out === undefined && parsed.values['no-install'] !== true) {
      // The pnpm running this script (also when it came through npx and is not on PATH).
      const pnpm = process.env.npm_execpath;
      const [cmd, pre]: [string, string[]] = !pnpm
        ? ['pnpm', []]
        : /\.[cm]?js$/.test(pnpm)
          ? [process.execPath, [pnpm]]
          : [pnpm, []];
      run(cmd, [...pre, 'install']);
      run(cmd, [...pre, '--filter', `@hardened-mcp/${names.name}`, 'build']);
      process.stderr.write(
        `next: pnpm --filter @hardened-mcp/${names.name} test, then edit src/store.ts, src/tools.ts and README.md\n`,
      );
    }
    return 0;
  } catch (err) {
    process.stderr.write(`new-connector: ${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
