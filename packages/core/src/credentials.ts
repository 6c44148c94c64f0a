import { readFile, stat } from 'node:fs/promises';
import { inspect } from 'node:util';
import type { CredentialSource } from './config.js';
import { StartupError } from './errors.js';
import type { CredentialScope } from './tool.js';

/**
 * A secret value. It cannot be printed by accident: `String(secret)`, `JSON.stringify`,
 * `util.inspect` and template literals all yield `[secret]`. Only {@link Secret.reveal} gives
 * the value, and only connector code that opens upstream connections calls it.
 */
export class Secret {
  readonly #value: string;
  /** Where the value came from, for messages (e.g. `env POSTGRES_URL`); never the value. */
  readonly source: string;
  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }
  /** The raw value. Never log, return or embed it in an error. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [inspect.custom](): string {
    return `Secret(${this.source})`;
  }
}

/** Resolved credentials per scope; a missing scope is `undefined`. */
export type Credentials = Readonly<Partial<Record<CredentialScope, Secret>>>;

/**
 * Loads each configured credential source.
 *
 * - `{ env: NAME }`: the variable's value; unset or empty → absent.
 * - `{ file: PATH }`: the file's content with one trailing newline removed; a missing file → absent;
 *   an unreadable file → error. A file readable by others is refused (secrets files must be 0600/0400
 *   or group-restricted, as container secret mounts are).
 *
 * @throws StartupError naming the source (never the value) when a configured file cannot be read.
 */
export async function loadCredentials(
  sources: Readonly<Partial<Record<CredentialScope, CredentialSource>>>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials> {
  const out: Partial<Record<CredentialScope, Secret>> = {};
  for (const scope of ['read', 'write'] as const) {
    const source = sources[scope];
    if (!source) continue;
    const secret = 'env' in source ? fromEnv(source.env, env) : await fromFile(source.file);
    if (secret) out[scope] = secret;
  }
  return Object.freeze(out);
}

function fromEnv(name: string, env: NodeJS.ProcessEnv): Secret | undefined {
  const value = env[name];
  return value ? new Secret(value, `env ${name}`) : undefined;
}

async function fromFile(path: string): Promise<Secret | undefined> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StartupError(
      `cannot read credential file ${path} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  if ((mode & 0o004) !== 0) {
    throw new StartupError(`credential file ${path} is readable by other users; chmod 600 it`);
  }
  try {
    const text = await readFile(path, 'utf8');
    const value = text.endsWith('\n') ? text.slice(0, -1).replace(/\r$/, '') : text;
    return value ? new Secret(value, `file ${path}`) : undefined;
  } catch (err) {
    throw new StartupError(
      `cannot read credential file ${path} (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}

/**
 * The strings worth redacting by exact value for a secret: the value itself and, when it is a
 * URL with a password, the decoded and encoded password too (drivers echo either form).
 */
export function secretFragments(secret: Secret): string[] {
  const value = secret.reveal();
  const out = new Set<string>([value]);
  try {
    const url = new URL(value);
    if (url.password) {
      out.add(url.password);
      out.add(decodeURIComponent(url.password));
    }
  } catch {
    // not a URL
  }
  return [...out].filter((s) => s.length >= 8);
}
