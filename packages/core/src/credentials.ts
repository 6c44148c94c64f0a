import { readFile, stat } from 'node:fs/promises';
import { inspect } from 'node:util';
import type { SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import type { CredentialSourceInput } from './config.js';
import { StartupError } from './errors.js';
import type { CredentialScope } from './tool.js';

/**
 * A credential as connectors hold it: the value in hand, and a way to fetch it again after the
 * upstream rejected it (rotation).
 *
 * - A static {@link Secret} (sources `env` and `file`, read once at startup) is its own handle:
 *   `current()` is the secret itself and `refresh()` resolves to it.
 * - A Secrets Manager credential (`secretsManager`) caches its value for `ttlSeconds`;
 *   `refresh()` fetches it again.
 *
 * Connectors read `current()` each time they open an upstream connection (never keep the
 * revealed string), and on an authentication failure call `refresh()` once and retry once.
 */
export interface CredentialHandle {
  /** Where the value comes from, for messages (e.g. `env POSTGRES_URL`); never the value. */
  readonly source: string;
  /** The value in hand. Synchronous; never waits for a fetch. */
  current(): Secret;
  /**
   * Fetches the value again (concurrent calls share one fetch) and resolves to it; the same
   * value when the source cannot change. Rejects with a secret-free error when the fetch fails
   * (the previous value stays in hand).
   */
  refresh(): Promise<Secret>;
}

/**
 * A secret value. It cannot be printed by accident: `String(secret)`, `JSON.stringify`,
 * `util.inspect` and template literals all yield `[secret]`. Only {@link Secret.reveal} gives
 * the value, and only connector code that opens upstream connections calls it.
 *
 * A `Secret` is also a {@link CredentialHandle} whose value never changes.
 */
export class Secret implements CredentialHandle {
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
  /** A static secret is its own current value. */
  current(): Secret {
    return this;
  }
  /** A static secret has nothing to fetch again: resolves to itself. */
  refresh(): Promise<Secret> {
    return Promise.resolve(this);
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
export type Credentials = Readonly<Partial<Record<CredentialScope, CredentialHandle>>>;

/** Credential sources per scope, as `loadCredentials` takes them. */
export type CredentialSources = Readonly<Partial<Record<CredentialScope, CredentialSourceInput>>>;

/**
 * What {@link loadCredentials} returns for `sources`: a static {@link Secret} for an `env` or
 * `file` source, a {@link CredentialHandle} for a `secretsManager` source.
 */
export type LoadedCredentials<S extends CredentialSources> = {
  readonly [K in CredentialScope]?: K extends keyof S
    ? NonNullable<S[K]> extends { readonly secretsManager: unknown }
      ? CredentialHandle
      : NonNullable<S[K]> extends { readonly env: string } | { readonly file: string }
        ? Secret
        : CredentialHandle
    : never;
};

/** Options of {@link loadCredentials}. */
export interface LoadCredentialsOptions {
  /**
   * Called with every value a source yields, before it is used: at load, and for a
   * `secretsManager` source after every later fetch (TTL expiry, rotation). `runConnectorCli`
   * registers each value's {@link secretFragments} with the redactor here. A throw fails the load
   * (or the fetch).
   */
  readonly onSecret?: ((secret: Secret) => void) | undefined;
  /** Called when a background re-fetch of a `secretsManager` source fails (the previous value stays in use). */
  readonly onRefreshError?: ((err: Error, source: string) => void) | undefined;
  /** Extra AWS SDK client settings for `secretsManager` sources (tests). */
  readonly secretsManagerClientConfig?: SecretsManagerClientConfig | undefined;
}

/**
 * Loads each configured credential source.
 *
 * - `{ env: NAME }`: the variable's value; unset or empty → absent.
 * - `{ file: PATH }`: the file's content with one trailing newline removed; a missing file → absent;
 *   an unreadable file → error. A file readable by others is refused (secrets files must be 0600/0400
 *   or group-restricted, as container secret mounts are).
 * - `{ secretsManager: { secretId, ... } }`: AWS Secrets Manager `GetSecretValue` (see
 *   {@link SecretsManagerCredential}); fetched now, so a missing secret or a failed fetch is an
 *   error, never an absent credential.
 *
 * @throws StartupError naming the source (never the value) when a configured file cannot be read
 *   or a secret cannot be fetched.
 */
export async function loadCredentials<const S extends CredentialSources>(
  sources: S,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadCredentialsOptions = {},
): Promise<LoadedCredentials<S>> {
  const out: Partial<Record<CredentialScope, CredentialHandle>> = {};
  for (const scope of ['read', 'write'] as const) {
    const source = sources[scope];
    if (!source) continue;
    const handle = await loadCredential(source, env, options);
    if (handle) out[scope] = handle;
  }
  return Object.freeze(out) as LoadedCredentials<S>;
}

/**
 * Loads one credential source (see {@link loadCredentials} for the rules of each kind).
 *
 * @returns the handle, or undefined when an `env` or `file` source is absent.
 * @throws StartupError naming the source (never the value) when it cannot be read or fetched.
 */
export async function loadCredential(
  source: CredentialSourceInput,
  env: NodeJS.ProcessEnv = process.env,
  options: LoadCredentialsOptions = {},
): Promise<CredentialHandle | undefined> {
  if ('secretsManager' in source) {
    // Loaded on demand: servers without this source never load the AWS SDK.
    const { SecretsManagerCredential } = await import('./secrets-manager.js');
    const credential: CredentialHandle = new SecretsManagerCredential(source.secretsManager, {
      onSecret: options.onSecret,
      onRefreshError: (err) => options.onRefreshError?.(err, credential.source),
      clientConfig: options.secretsManagerClientConfig,
    });
    try {
      await credential.refresh();
    } catch (err) {
      throw new StartupError(err instanceof Error ? err.message : 'cannot fetch a credential', {
        cause: err,
      });
    }
    return credential;
  }
  const secret = 'env' in source ? fromEnv(source.env, env) : await fromFile(source.file);
  if (secret) options.onSecret?.(secret);
  return secret;
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
