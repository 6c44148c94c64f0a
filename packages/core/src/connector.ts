import type { z } from 'zod';
import type { CoreConfig, CredentialSource } from './config.js';
import type { CredentialHandle } from './credentials.js';
import type { Logger } from './logger.js';
import type { Redactor } from './redaction/index.js';
import type { CredentialScope, SecretRegistry, Tool } from './tool.js';

/** What every connector hook receives: configuration, logger and the secret registry. */
export interface ConnectorContext<S> {
  /** The whole parsed, frozen configuration (core keys + the connector's section). */
  readonly config: Readonly<CoreConfig> & { readonly [key: string]: unknown };
  /** The connector's own section. */
  readonly settings: Readonly<S>;
  /** Values of the connector's extra boolean CLI flags. */
  readonly flags: Readonly<Record<string, boolean>>;
  readonly logger: Logger;
  /** Secrets the connector obtains itself (temporary credentials, tokens) are registered here. */
  readonly secrets: SecretRegistry;
  /** The redactor (for connectors that log upstream text themselves). */
  readonly redactor: Redactor;
  /**
   * The environment `env` credential sources are read from (the `assemble` option, else
   * `process.env`), for connectors that read further credentials or settings themselves (e.g.
   * an OAuth client secret). Absent only in contexts built outside `assemble`.
   */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** What a connector's `tools()` returns: its tools, and what to stop with the server. */
export interface ConnectorTools<C> {
  /** Every tool the connector declares; the core decides which are enabled. */
  readonly tools: readonly Tool<C>[];
  /** Stops helper processes the tools use (e.g. the SQL checker); called once at shutdown. */
  close?(): Promise<void>;
  /**
   * What each configured `classification.labels` key means to this connector, for
   * `--print-policy` (e.g. `{ path: 'description', label: 'restricted', means: 'the Jira field
   * description in every project' }`). Optional: without it the labels are printed as configured.
   */
  readonly labelledPaths?: readonly LabelledPath[] | undefined;
}

/** One classification label as a connector explains it (see {@link ConnectorTools.labelledPaths}). */
export interface LabelledPath {
  /** The configured key, as written under `classification.labels`. */
  readonly path: string;
  readonly label: 'public' | 'internal' | 'confidential' | 'restricted';
  /** What the key labels, in words (e.g. `project SUP`, `field description in project SUP`). */
  readonly means: string;
}

/**
 * A connector: a narrow server built only on the core. It declares its configuration section,
 * credential sources, how to open one upstream client per credential scope, and tools as data;
 * the core owns everything else (see {@link defineConnector}).
 *
 * @typeParam S - the connector's parsed settings (its configuration section)
 * @typeParam C - the upstream client type, one per credential scope (e.g. a `pg.Pool` wrapper)
 */
export interface ConnectorDefinition<S, C> {
  /** Lower-case connector id: config key, scope prefix (`<name>:read`), tool name prefix. */
  readonly name: string;
  /** Executable name, for messages (e.g. `hardened-mcp-postgres`). */
  readonly bin: string;
  readonly version: string;
  readonly title: string;
  /** Names the data source in the untrusted-data fence. */
  readonly dataSource: string;
  readonly instructions?: string | undefined;
  /** The connector's configuration section (strict, with defaults for every key). */
  readonly configSection: z.ZodType<S>;
  /**
   * Where credentials come from. `secrets` (default): the core loads a read (and optional write)
   * credential from `credentials:` or {@link defaultCredentials}, refuses to start without a read
   * one, and hands each to `openClient`. `connector`: the connector obtains its own short-lived
   * credentials in `openClient` (e.g. the AWS SDK provider chain and `sts:AssumeRole`) and gets
   * `undefined`; the `credentials:` section must then be empty.
   */
  readonly credentialSource?: 'secrets' | 'connector' | undefined;
  /** Credential sources used when the configuration names none (`credentialSource: 'secrets'`). */
  readonly defaultCredentials: Readonly<Partial<Record<CredentialScope, CredentialSource>>>;
  /** Extra boolean CLI flags (e.g. `allow-privileged-role`). */
  readonly flags?: Readonly<Record<string, { readonly description: string }>> | undefined;
  /** Extra lines for `--help`. */
  readonly usage?: string | undefined;
  /**
   * Declares the tools from configuration alone: no upstream client is in reach here, so a tool
   * can only use the client the core hands its `execute` (the one of its own access).
   *
   * @throws StartupError with a one-line, secret-free message to refuse starting.
   */
  tools(ctx: ConnectorContext<S>): ConnectorTools<C> | Promise<ConnectorTools<C>>;
  /**
   * Opens the upstream client of one credential scope and runs that scope's startup checks. The
   * core calls it for `read` first, then for `write` only in `read-write` mode with a write
   * credential (or, for `credentialSource: 'connector'`, in `read-write` mode).
   *
   * @throws StartupError with a one-line, secret-free message to refuse starting (the core then
   *   closes whatever it had opened).
   */
  openClient(
    scope: CredentialScope,
    credential: CredentialHandle | undefined,
    ctx: ConnectorContext<S>,
  ): Promise<C>;
  /** Releases one client (pool, sockets). Must not throw for an already closed client. */
  closeClient(client: C): Promise<void> | void;
  /** Readiness with the read client (for `/readyz`): true when the upstream answers. */
  ready?(client: C, ctx: ConnectorContext<S>): Promise<boolean>;
  /**
   * Over stdio, answer `initialize` and `tools/list` while `openClient` runs its startup checks
   * (calls wait for them and are refused if they fail; see `AssembleOptions.deferClientChecks`).
   * Only for a connector whose observable startup work is its checks alone. Default false.
   */
  readonly deferClientChecks?: boolean | undefined;
}

/**
 * Declares a connector, validating the definition at construction (cf. hono's middleware
 * factories): a bad name or bin is a programming error found at import time, not at the first
 * call.
 *
 * @throws Error when `name` is not a lower-case identifier, `bin` is empty, or a connector that
 *   obtains its own credentials declares default credential sources.
 */
export function defineConnector<S, C>(
  definition: ConnectorDefinition<S, C>,
): ConnectorDefinition<S, C> {
  if (!/^[a-z][a-z0-9]*$/.test(definition.name))
    throw new Error(`connector name ${definition.name} must be a lower-case identifier`);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(definition.bin))
    throw new Error(`connector ${definition.name}: bin must be a lower-case executable name`);
  if (
    definition.credentialSource === 'connector' &&
    Object.keys(definition.defaultCredentials).length > 0
  )
    throw new Error(
      `connector ${definition.name} obtains its own credentials: defaultCredentials must be empty`,
    );
  for (const flag of Object.keys(definition.flags ?? {}))
    if (!/^[a-z][a-z0-9-]*$/.test(flag))
      throw new Error(`connector ${definition.name}: flag ${flag} is not kebab-case`);
  return Object.freeze({ ...definition });
}
