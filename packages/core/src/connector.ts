import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { openAuditTrail } from './audit/index.js';
import {
  type CoreConfig,
  type CredentialSource,
  defineConfigSchema,
  parseConfig,
  readConfigFile,
} from './config.js';
import { type Credentials, loadCredentials, secretFragments } from './credentials.js';
import { StartupError } from './errors.js';
import { createAuthenticator } from './http/auth.js';
import {
  identityFromAuthInfo,
  isLoopback,
  type RunningHttpServer,
  serveHttp,
} from './http/http-server.js';
import { resolveStdioIdentity } from './identity.js';
import { createLogger, type Logger } from './logger.js';
import { createMcpServer, serveStdio } from './mcp-server.js';
import { createServerMetrics } from './metrics.js';
import { createPipeline } from './pipeline.js';
import { createMemoryRateLimiter, createRedisRateLimiter } from './rate-limit.js';
import { createRedactor, type Redactor } from './redaction/index.js';
import type { CredentialScope, ToolDefinition } from './tool.js';

/** What a connector's `open` receives. */
export interface ConnectorContext<C> {
  /** The whole parsed, frozen configuration (core keys + the connector's section). */
  readonly config: Readonly<CoreConfig> & { readonly [key: string]: unknown };
  /** The connector's own section. */
  readonly settings: Readonly<C>;
  readonly credentials: Credentials;
  /** Values of the connector's extra boolean CLI flags. */
  readonly flags: Readonly<Record<string, boolean>>;
  readonly logger: Logger;
  readonly redactor: Redactor;
}

/** What a connector's `open` returns. */
export interface OpenedConnector<H> {
  /** One handle per available credential scope (e.g. a connection pool per role). */
  readonly handles: Readonly<Partial<Record<CredentialScope, H>>>;
  /** Every tool the connector declares; the core decides which are enabled. */
  readonly tools: readonly ToolDefinition<never, H>[];
  /** Releases handles (pools, clients). */
  close(): Promise<void>;
  /** Readiness: the upstream answers with the read credential (for `/readyz`). */
  ready?(): Promise<boolean>;
}

/**
 * A connector: a narrow server built only on the core. It declares its configuration section,
 * default credential sources, and tools as data; the core runs everything else.
 */
export interface ConnectorDefinition<C, H> {
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
  readonly configSection: z.ZodType<C>;
  /**
   * Where credentials come from. `secrets` (default): the core loads a read (and optional write)
   * credential from `credentials:` or {@link defaultCredentials} and refuses to start without a
   * read one. `connector`: the connector obtains its own short-lived credentials in `open()`
   * (e.g. the AWS SDK provider chain and `sts:AssumeRole`); the `credentials:` section must then
   * be empty, and `open()` must return a read handle or throw.
   */
  readonly credentialSource?: 'secrets' | 'connector' | undefined;
  /** Credential sources used when the configuration names none (`credentialSource: 'secrets'`). */
  readonly defaultCredentials: Readonly<Partial<Record<CredentialScope, CredentialSource>>>;
  /** Extra boolean CLI flags (e.g. `allow-privileged-role`). */
  readonly flags?: Readonly<Record<string, { readonly description: string }>> | undefined;
  /** Extra lines for `--help`. */
  readonly usage?: string | undefined;
  /**
   * Opens upstream handles and runs startup checks.
   * @throws StartupError with a one-line, secret-free message to refuse starting.
   */
  open(ctx: ConnectorContext<C>): Promise<OpenedConnector<H>>;
}

/** A started server (for tests and embedding). */
export interface RunningServer {
  readonly done: Promise<void>;
}

/**
 * The bin entry point of every connector: parses `argv`, reads and validates configuration,
 * loads credentials, opens the connector, builds the pipeline and serves stdio.
 *
 * Exit codes: 0 on a clean shutdown; 1 on a startup error (one line on stderr, no stack trace,
 * no secret); 2 on a usage error.
 */
export async function runConnectorCli<C, H>(
  def: ConnectorDefinition<C, H>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<number> {
  let fallbackRedactor: Redactor | undefined;
  try {
    const flagOptions = Object.fromEntries(
      Object.keys(def.flags ?? {}).map((f) => [f, { type: 'boolean' as const }]),
    );
    let args: ReturnType<typeof parseArgs>['values'];
    try {
      ({ values: args } = parseArgs({
        args: [...argv],
        strict: true,
        allowPositionals: false,
        options: {
          config: { type: 'string', short: 'c' },
          mode: { type: 'string' },
          transport: { type: 'string' },
          healthcheck: { type: 'boolean' },
          help: { type: 'boolean', short: 'h' },
          version: { type: 'boolean' },
          ...flagOptions,
        },
      }));
    } catch (err) {
      process.stderr.write(`${def.bin}: ${(err as Error).message}\n${usage(def)}`);
      return 2;
    }
    if (args.help) {
      process.stderr.write(usage(def));
      return 0;
    }
    if (args.version) {
      process.stderr.write(`${def.bin} ${def.version}\n`);
      return 0;
    }
    const raw = (
      typeof args.config === 'string' ? await readConfigFile(args.config) : {}
    ) as Record<string, unknown> | null;
    if (raw !== null && (typeof raw !== 'object' || Array.isArray(raw)))
      throw new StartupError('invalid configuration: the file must hold an object');
    const merged = { ...(raw ?? {}) };
    if (typeof args.mode === 'string') merged.mode = args.mode;
    if (typeof args.transport === 'string') merged.transport = args.transport;
    const schema = defineConfigSchema(def.name, def.configSection);
    const config = parseConfig(schema, merged) as unknown as Readonly<CoreConfig> &
      Record<string, unknown>;
    if (args.healthcheck) return await healthcheck(config);
    if (
      config.transport === 'http' &&
      !isLoopback(config.http.host) &&
      config.auth.mode === 'none'
    ) {
      throw new StartupError(
        `refusing to listen on ${config.http.host} without authentication: set auth.mode to oauth or api-key, or bind to 127.0.0.1`,
      );
    }
    const sources = {
      read: config.credentials.read ?? def.defaultCredentials.read,
      write: config.credentials.write ?? def.defaultCredentials.write,
    };
    // The redactor exists before any credential is loaded: every value a source yields (also
    // later, after a TTL expiry or a rotation) is registered with it before it is used.
    const redactor = createRedactor({
      pii: config.output.redaction.pii,
      keyRules: config.output.redaction.keyRules,
    });
    fallbackRedactor = redactor;
    const logger = createLogger(config.log.level, redactor);
    const connectorManaged = def.credentialSource === 'connector';
    if (connectorManaged && (config.credentials.read || config.credentials.write)) {
      throw new StartupError(
        `${def.bin} obtains its own credentials: remove the credentials section from the configuration`,
      );
    }
    const credentials: Credentials = connectorManaged
      ? {}
      : await loadCredentials(sources, process.env, {
          onSecret: (secret) => {
            for (const fragment of secretFragments(secret)) redactor.addKnownSecret(fragment);
          },
          onRefreshError: (err, source) =>
            logger.warn(
              { err },
              `re-fetching the credential (${source}) failed; the value in hand stays in use`,
            ),
        });
    if (!connectorManaged && !credentials.read) {
      const where = !sources.read
        ? 'configure credentials.read'
        : 'env' in sources.read
          ? `set ${sources.read.env}`
          : 'file' in sources.read
            ? `create ${sources.read.file}`
            : 'configure credentials.read';
      throw new StartupError(`no read credential: ${where}`);
    }
    const flags = Object.fromEntries(
      Object.keys(def.flags ?? {}).map((f) => [f, args[f] === true]),
    );
    const opened = await def.open({
      config,
      settings: config[def.name] as C,
      credentials,
      flags,
      logger,
      redactor,
    });
    if (!opened.handles.read) {
      await opened.close();
      throw new StartupError(`${def.bin} has no read credential handle`);
    }
    // Set once the metrics exist (they need the tool list, known after the audit log opens).
    let countAuditError: (sink: string) => void = () => {};
    let trail: Awaited<ReturnType<typeof openAuditTrail>>;
    try {
      trail = await openAuditTrail(config.audit, {
        server: { name: def.bin, version: def.version },
        loadSecret: async (source) =>
          (
            await loadCredentials({ read: source }, process.env, {
              onSecret: (secret) => {
                for (const fragment of secretFragments(secret)) redactor.addKnownSecret(fragment);
              },
            })
          ).read
            ?.current()
            .reveal(),
        onSinkError: (err, failure) => {
          countAuditError(failure.sink);
          logger.error({ err, sink: failure.sink }, 'audit sink failed');
        },
        onDeliveryError: (err, sink) => {
          countAuditError(sink);
          logger.warn({ err, sink }, 'audit delivery to a remote sink failed; it is retried');
        },
      });
    } catch (err) {
      await opened.close();
      throw err;
    }
    const audit = trail.audit;
    const roles: Record<string, readonly string[]> = {
      reader: [`${def.name}:read`],
      writer: [`${def.name}:read`, `${def.name}:write`],
      ...config.roles,
    };
    const perToolRates = Object.fromEntries(
      Object.entries(config.tools.settings).map(([t, s]) => [t, s.rateLimit]),
    );
    const redisUrl = config.redis.url ?? process.env.REDIS_URL;
    const rateLimiter = redisUrl
      ? createRedisRateLimiter(redisUrl, config.rateLimit, perToolRates)
      : createMemoryRateLimiter(config.rateLimit, perToolRates);
    const metrics = createServerMetrics(opened.tools.map((t) => t.name));
    metrics.observeAudit({ healthy: () => audit.healthy, remotes: trail.remotes });
    countAuditError = (sink) => metrics.observeAuditSinkError(sink);
    const pipeline = createPipeline<H>({
      server: { name: def.bin, version: def.version },
      dataSource: def.dataSource,
      tools: opened.tools,
      mode: config.mode,
      allow: config.tools.allow,
      toolSettings: config.tools.settings,
      roles,
      handles: opened.handles,
      limits: { maxRows: config.output.maxRows, maxBytes: config.output.maxBytes },
      redactor,
      audit,
      rateLimiter,
      logger,
      observer: (entry) => metrics.observeCall(entry),
    });
    if (config.mode === 'read-write' && !opened.handles.write) {
      logger.warn(
        'mode is read-write but no write credential is configured: write tools are disabled',
      );
    }
    const closeAll = async () => {
      await opened.close();
      await rateLimiter.close?.();
      await audit.close();
    };
    const makeServer = () =>
      createMcpServer({
        info: { name: def.bin, version: def.version, title: def.title },
        instructions: def.instructions,
        pipeline,
        identity: (client, auth) =>
          identityFromAuthInfo(auth, client) ??
          resolveStdioIdentity(config.identity, config.defaultRoles, client),
        logger,
      });
    if (config.transport === 'stdio') {
      logger.info(
        {
          mode: config.mode,
          tools: pipeline.enabledTools,
          rateLimitStore: redisUrl ? 'redis' : 'memory',
        },
        `${def.bin} ${def.version} ready on stdio`,
      );
      await serveStdio(makeServer(), closeAll);
      return 0;
    }
    let resource = '';
    let running: RunningHttpServer;
    try {
      const authenticator = await createAuthenticator(config.auth, () => resource);
      running = await serveHttp({
        http: config.http,
        authenticator,
        oauth:
          config.auth.mode === 'oauth' && config.auth.oauth
            ? {
                issuer: config.auth.oauth.issuer,
                scopesSupported: config.auth.oauth.scopesSupported,
              }
            : undefined,
        anonymousRoles: config.defaultRoles,
        createServer: makeServer,
        pipeline,
        metrics,
        audit: (entry) => {
          audit
            .record(entry)
            .catch((err: unknown) => logger.error({ err }, 'audit record could not be written'));
          metrics.observeCall(entry);
        },
        serverInfo: { name: def.bin, version: def.version },
        ready: async () => {
          const ready = audit.healthy && (opened.ready ? await opened.ready() : true);
          metrics.setReady(ready);
          return ready;
        },
        logger,
      });
    } catch (err) {
      await closeAll();
      throw err;
    }
    resource = running.resource;
    logger.info(
      {
        mode: config.mode,
        tools: pipeline.enabledTools,
        auth: config.auth.mode,
        resource,
        management: running.managementUrl,
        rateLimitStore: redisUrl ? 'redis' : 'memory',
      },
      `${def.bin} ${def.version} listening on ${running.url}`,
    );
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down: draining in-flight calls');
        void running
          .close()
          .then(closeAll)
          .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
          .finally(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  } catch (err) {
    // Unexpected errors: name and message only (redacted below), never a stack trace.
    const message =
      err instanceof StartupError
        ? err.message
        : `startup failed: ${err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error'}`;
    const safe = fallbackRedactor ? fallbackRedactor.redactString(message).value : message;
    process.stderr.write(`${def.bin}: ${safe}\n`);
    return 1;
  }
}

function usage(def: {
  readonly bin: string;
  readonly flags?: Readonly<Record<string, { readonly description: string }>> | undefined;
  readonly usage?: string | undefined;
}): string {
  const flags = Object.entries(def.flags ?? {})
    .map(([f, d]) => `  --${f.padEnd(24)} ${d.description}\n`)
    .join('');
  return (
    `usage: ${def.bin} [--config FILE] [--mode read-only|read-write]\n` +
    '  --config, -c FILE           YAML or JSON configuration (unknown keys are errors)\n' +
    '  --mode MODE                 read-only (default) or read-write\n' +
    '  --transport T               stdio (default) or http (Streamable HTTP on /mcp)\n' +
    "  --healthcheck               probe the running HTTP server's /healthz and exit 0 or 1\n" +
    flags +
    '  --help, --version\n' +
    (def.usage ?? '')
  );
}

/**
 * `--healthcheck`: the exit code of a container HEALTHCHECK in an image without a shell or curl
 * (0 healthy, 1 not). It reads the same configuration as the server, so it must be given the
 * server's `--config` (and `--transport`, when the transport is set on the command line).
 *
 * - `transport: http`: asks this server's health listener (`http.management`) for `/healthz`;
 *   healthy only on a 200 within 3 s. A disabled listener, or one on port 0, cannot be probed.
 * - `transport: stdio`: returns 0 without probing and says so in one line on stderr. A stdio
 *   server has no listener; its only client is the process attached to its stdin, so it is alive
 *   exactly as long as its process is (which the container runtime already knows).
 */
async function healthcheck(config: Readonly<CoreConfig>): Promise<number> {
  if (config.transport === 'stdio') {
    process.stderr.write(
      'healthcheck: transport is stdio, nothing to probe (no listener); healthy while the process runs\n',
    );
    return 0;
  }
  const m = config.http.management;
  if (!m.enabled || m.port === 0) {
    process.stderr.write('healthcheck: the health listener is disabled or has no fixed port\n');
    return 1;
  }
  const host =
    m.host === '0.0.0.0'
      ? '127.0.0.1'
      : m.host === '::'
        ? '[::1]'
        : m.host.includes(':')
          ? `[${m.host}]`
          : m.host;
  try {
    const res = await fetch(`http://${host}:${m.port}/healthz`, {
      signal: AbortSignal.timeout(3000),
    });
    return res.status === 200 ? 0 : 1;
  } catch {
    return 1;
  }
}
