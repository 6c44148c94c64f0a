/**
 * AWS Secrets Manager as a credential source: `GetSecretValue` with a staging label, an optional
 * field of a JSON `SecretString`, a TTL cache, and forced re-fetches after an upstream
 * authentication failure (rotation).
 *
 * The AWS SDK is loaded on first use only (`import()`), so servers that do not use this source
 * never load it.
 */
import type {
  GetSecretValueCommandOutput,
  SecretsManagerClient,
  SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import type { SecretsManagerSource, SecretsManagerSourceInput } from './config.js';
import { type CredentialHandle, Secret } from './credentials.js';

/** A failed fetch: names the secret and the AWS error type, never the value. */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

/** Options of {@link openSecretsManagerCredential}. */
export interface SecretsManagerCredentialOptions {
  /**
   * Called with every fetched value before it is used (and with the whole `SecretString` and
   * its secret-looking JSON fields when `jsonKey` picks one field). Register them with the
   * redactor here. A throw fails the fetch.
   */
  readonly onSecret?: ((secret: Secret) => void) | undefined;
  /** Called when a re-fetch started in the background by `current()` fails. */
  readonly onRefreshError?: ((err: CredentialError) => void) | undefined;
  /** Extra AWS SDK client settings (tests: static credentials, retries). */
  readonly clientConfig?: SecretsManagerClientConfig | undefined;
  /**
   * After a `refresh()` that found the value unchanged, further `refresh()` calls within this
   * many ms return it without a request (default 1000): a password changed upstream before the
   * secret was updated would otherwise cost one request per refused connection.
   */
  readonly minRefreshIntervalMs?: number | undefined;
  /** After a failed background re-fetch, wait this long before the next one (default 30 s, at most the TTL). */
  readonly backgroundRetryMs?: number | undefined;
  /** Clock in ms (tests). */
  readonly now?: (() => number) | undefined;
}

/** Time allowed to open a connection to Secrets Manager, and for one request, in ms. */
const CONNECTION_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** JSON fields of a SecretString registered as secrets besides the one `jsonKey` picks. */
const SECRET_FIELD = /pass|secret|token|key|credential|url|dsn|uri/i;

/**
 * A credential held in AWS Secrets Manager. `current()` is synchronous: it returns the value in
 * hand and, once that value is older than `ttlSeconds`, starts a re-fetch in the background
 * (the old value is used until it lands). `get()` waits for a fresh value; `refresh()` (after an
 * upstream authentication failure) and `invalidate()` force the next fetch. Concurrent fetches
 * share one request.
 */
export class SecretsManagerCredential implements CredentialHandle {
  /** E.g. `secretsManager prod/pg-read key url`; never the value. */
  readonly source: string;
  readonly #config: SecretsManagerSource;
  readonly #options: SecretsManagerCredentialOptions;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #client: Promise<Pick<SecretsManagerClient, 'send'>> | undefined;
  #value: Secret | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #invalidated = false;
  #inflight: Promise<Secret> | undefined;
  #backgroundRetryAt = Number.NEGATIVE_INFINITY;
  /** When a `refresh()` last found the value unchanged. */
  #unchangedAt = Number.NEGATIVE_INFINITY;
  #fetches = 0;

  constructor(config: SecretsManagerSourceInput, options: SecretsManagerCredentialOptions = {}) {
    this.#config = {
      ...config,
      versionStage: config.versionStage ?? 'AWSCURRENT',
      ttlSeconds: config.ttlSeconds ?? 300,
    };
    this.#options = options;
    this.#ttlMs = this.#config.ttlSeconds * 1000;
    this.#now = options.now ?? Date.now;
    this.source =
      `secretsManager ${config.secretId}` +
      (this.#config.versionStage === 'AWSCURRENT' ? '' : ` stage ${this.#config.versionStage}`) +
      (config.jsonKey === undefined ? '' : ` key ${config.jsonKey}`);
  }

  /** How many `GetSecretValue` requests were started (fetches, not retries inside the SDK). */
  get fetches(): number {
    return this.#fetches;
  }

  /**
   * The value in hand. When it is older than the TTL (or invalidated), a re-fetch starts in the
   * background and this still returns the old value.
   * @throws CredentialError before the first successful fetch.
   */
  current(): Secret {
    const value = this.#value;
    if (value === undefined) throw new CredentialError(`${this.source} has not been fetched yet`);
    const now = this.#now();
    if (this.#isStale(now) && this.#inflight === undefined && now >= this.#backgroundRetryAt) {
      this.#fetch().catch((err: unknown) => {
        this.#backgroundRetryAt = this.#now() + this.#backgroundRetryMs();
        this.#options.onRefreshError?.(asCredentialError(err, this.source));
      });
    }
    return value;
  }

  /** The value, fetched first when none is in hand or it is older than the TTL or invalidated. */
  async get(): Promise<Secret> {
    const value = this.#value;
    if (value !== undefined && !this.#isStale(this.#now())) return value;
    return this.#fetch();
  }

  /** Marks the value stale: the next `get()` fetches, the next `current()` starts a fetch. */
  invalidate(): void {
    this.#invalidated = true;
  }

  /**
   * Fetches the value again (after an upstream authentication failure). Concurrent calls share
   * one request. Within `minRefreshIntervalMs` of a refresh that found the value unchanged, the
   * value in hand is returned without a request.
   * @throws CredentialError when the fetch fails (the previous value stays in hand).
   */
  async refresh(): Promise<Secret> {
    if (this.#inflight !== undefined) return this.#inflight;
    const before = this.#value;
    if (
      before !== undefined &&
      this.#now() - this.#unchangedAt < (this.#options.minRefreshIntervalMs ?? 1000)
    ) {
      return before;
    }
    this.invalidate();
    const after = await this.#fetch();
    if (before !== undefined && after.reveal() === before.reveal()) this.#unchangedAt = this.#now();
    return after;
  }

  #isStale(now: number): boolean {
    return this.#invalidated || now - this.#fetchedAt >= this.#ttlMs;
  }

  #backgroundRetryMs(): number {
    return Math.min(this.#options.backgroundRetryMs ?? 30_000, this.#ttlMs);
  }

  #fetch(): Promise<Secret> {
    this.#inflight ??= this.#fetchOnce().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetchOnce(): Promise<Secret> {
    this.#fetches += 1;
    const startedAt = this.#now();
    let out: GetSecretValueCommandOutput;
    try {
      const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
      const client = await this.#sdkClient();
      out = await client.send(
        new GetSecretValueCommand({
          SecretId: this.#config.secretId,
          VersionStage: this.#config.versionStage,
        }),
      );
    } catch (err) {
      throw new CredentialError(`cannot fetch ${this.source}: ${describeAwsError(err)}`, {
        cause: err,
      });
    }
    const secrets = this.#extract(out);
    // Registered (with the redactor) before the value is used anywhere.
    for (const s of secrets) this.#options.onSecret?.(s);
    const value = secrets[0] as Secret;
    this.#value = value;
    this.#fetchedAt = startedAt;
    this.#invalidated = false;
    this.#backgroundRetryAt = Number.NEGATIVE_INFINITY;
    return value;
  }

  /** The credential first, then the other strings worth redacting. Errors never quote the value. */
  #extract(out: GetSecretValueCommandOutput): Secret[] {
    const raw = out.SecretString;
    if (typeof raw !== 'string') {
      throw new CredentialError(
        `${this.source} has no SecretString (binary secrets are not supported)`,
      );
    }
    const key = this.#config.jsonKey;
    if (key === undefined) {
      if (raw === '') throw new CredentialError(`${this.source} is empty`);
      return [new Secret(raw, this.source)];
    }
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch {
      // No cause: a SyntaxError quotes the text around the error, i.e. part of the secret.
      throw new CredentialError(`${this.source}: the SecretString is not JSON (jsonKey is set)`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new CredentialError(`${this.source}: the SecretString is not a JSON object`);
    }
    const fields = doc as Record<string, unknown>;
    const value = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (typeof value !== 'string' || value === '') {
      throw new CredentialError(
        `${this.source}: the SecretString has no non-empty string field ${JSON.stringify(key)}`,
      );
    }
    const extra = Object.entries(fields)
      .filter(([k, v]) => k !== key && SECRET_FIELD.test(k) && typeof v === 'string' && v !== '')
      .map(([k, v]) => new Secret(v as string, `${this.source} (field ${k})`));
    return [
      new Secret(value, this.source),
      new Secret(raw, `${this.source} (SecretString)`),
      ...extra,
    ];
  }

  #sdkClient(): Promise<Pick<SecretsManagerClient, 'send'>> {
    this.#client ??= import('@aws-sdk/client-secrets-manager').then(
      ({ SecretsManagerClient }) =>
        new SecretsManagerClient({
          ...(this.#config.region === undefined ? {} : { region: this.#config.region }),
          ...(this.#config.endpoint === undefined ? {} : { endpoint: this.#config.endpoint }),
          maxAttempts: 3,
          requestHandler: {
            connectionTimeout: CONNECTION_TIMEOUT_MS,
            requestTimeout: REQUEST_TIMEOUT_MS,
          },
          ...this.#options.clientConfig,
        }),
    );
    // A failed import or constructor (e.g. no region) is retried by the next fetch.
    this.#client.catch(() => {
      this.#client = undefined;
    });
    return this.#client;
  }
}

/**
 * Opens a Secrets Manager credential and fetches its first value.
 * @throws CredentialError when the first fetch fails.
 */
export async function openSecretsManagerCredential(
  config: SecretsManagerSourceInput,
  options: SecretsManagerCredentialOptions = {},
): Promise<SecretsManagerCredential> {
  const credential = new SecretsManagerCredential(config, options);
  await credential.get();
  return credential;
}

function asCredentialError(err: unknown, source: string): CredentialError {
  return err instanceof CredentialError
    ? err
    : new CredentialError(`cannot fetch ${source}: unexpected error`, { cause: err });
}

/** The AWS error type (and HTTP status) or the network error code, plus a hint for the common ones. */
function describeAwsError(err: unknown): string {
  const e = err as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const message = typeof e.message === 'string' ? e.message : '';
  const status = e.$metadata?.httpStatusCode;
  if (/Region is missing/i.test(message)) return 'no AWS region (set region or AWS_REGION)';
  if (name === 'CredentialsProviderError') return 'no AWS credentials found';
  const hints: Record<string, string> = {
    ResourceNotFoundException: 'no such secret or staging label',
    AccessDeniedException: 'access denied',
    UnrecognizedClientException: 'the AWS credentials were rejected',
    DecryptionFailure: 'the secret cannot be decrypted with its KMS key',
    InvalidRequestException: 'the secret is scheduled for deletion or unusable',
  };
  const network =
    typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)
      ? e.code
      : /timed? ?out/i.test(message) || name === 'TimeoutError'
        ? 'timeout'
        : undefined;
  const hint = hints[name] ?? network;
  return `${name}${typeof status === 'number' ? ` (HTTP ${status})` : ''}${hint ? `: ${hint}` : ''}`;
}
