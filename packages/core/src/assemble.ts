import { openAuditTrail } from './audit/index.js';
import type { CoreConfig } from './config.js';
import type { ConnectorContext, ConnectorDefinition, ConnectorTools } from './connector.js';
import { createPrincipalClients } from './credentials/principal-clients.js';
import {
  type CredentialHandle,
  type Credentials,
  loadCredential,
  loadCredentials,
  type Secret,
  secretFragments,
} from './credentials.js';
import { StartupError } from './errors.js';
import { createAuthenticator } from './http/auth.js';
import { identityFromAuthInfo, type RunningHttpServer, serveHttp } from './http/http-server.js';
import { mtlsServerOptions } from './http/mtls.js';
import { resolveStdioIdentity } from './identity.js';
import { createLogger, type Logger } from './logger.js';
import { createMcpServer, serveStdio } from './mcp-server.js';
import { createServerMetrics } from './metrics.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import { createAccessControlFromConfig } from './policy/from-config.js';
import { createMemoryRateLimiter, createRedisRateLimiter } from './rate-limit.js';
import { createRedactor, type Redactor } from './redaction/index.js';
import { type CredentialScope, secretRegistry, type Tool } from './tool.js';

/** A parsed configuration of a connector: the core keys plus its own section. */
export type ConnectorConfig = Readonly<CoreConfig> & { readonly [key: string]: unknown };

/** Options of {@link assemble}. */
export interface AssembleOptions {
  /** Where `env` credential sources are read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Values of the connector's extra boolean CLI flags. */
  readonly flags?: Readonly<Record<string, boolean>> | undefined;
}

/** A server built from a definition and a configuration, not yet serving. */
export interface AssembledServer {
  readonly config: ConnectorConfig;
  readonly pipeline: Pipeline;
  readonly logger: Logger;
  readonly redactor: Redactor;
  /** Serves MCP over stdio until the client closes stdin or a signal arrives, then closes everything. */
  serveStdio(): Promise<void>;
  /** Starts the Streamable HTTP listener (and the management listener); resolves when listening. */
  serveHttp(): Promise<RunningHttpServer>;
  /**
   * Reads the Cedar policy files again (SIGHUP): a valid set replaces the one in force between
   * calls; an invalid one keeps it and the reason is logged. False when it was rejected or no
   * policies are configured.
   */
  reloadPolicies(): Promise<boolean>;
  /** Closes clients, tool helpers, the rate-limit store and the audit trail. Idempotent. */
  close(): Promise<void>;
}

function missingReadCredential(
  source: ConnectorDefinition<unknown, unknown>['defaultCredentials']['read'],
): string {
  if (!source) return 'configure credentials.read';
  if ('env' in source) return `set ${source.env}`;
  if ('file' in source) return `create ${source.file}`;
  return 'configure credentials.read';
}

/**
 * Builds a server from a connector definition and a parsed configuration, in the order the
 * contract promises: redactor and logger first (every credential is registered with the redactor
 * before it is used), credentials, the connector's tools (declared without clients), the read
 * client, the write client only in `read-write` mode with a write credential, the audit trail,
 * the rate limiter and the pipeline. Whatever was opened is closed again when a later step fails.
 * Runs in-process (tests embed it); {@link runConnectorCli} wraps it with the command line.
 *
 * @throws StartupError with a one-line, secret-free message when the server must not start.
 */
export async function assemble<S, C>(
  def: ConnectorDefinition<S, C>,
  config: ConnectorConfig,
  options: AssembleOptions = {},
): Promise<AssembledServer> {
  const env = options.env ?? process.env;
  const redactor = createRedactor({
    pii: config.output.redaction.pii,
    keyRules: config.output.redaction.keyRules,
  });
  const logger = createLogger(config.log.level, redactor);
  const registerSecret = (secret: Secret) => {
    for (const fragment of secretFragments(secret)) redactor.addKnownSecret(fragment);
  };
  const secrets = secretRegistry(redactor);
  const ctx: ConnectorContext<S> = {
    config,
    settings: config[def.name] as S,
    flags: options.flags ?? {},
    logger,
    secrets,
    redactor,
    env,
  };
  const credentialOptions = {
    onSecret: registerSecret,
    onRefreshError: (err: Error, source: string) =>
      logger.warn(
        { err },
        `re-fetching the credential (${source}) failed; the value in hand stays in use`,
      ),
  };
  const connectorManaged = def.credentialSource === 'connector';
  if (connectorManaged && (config.credentials.read || config.credentials.write))
    throw new StartupError(
      `${def.bin} obtains its own credentials: remove the credentials section from the configuration`,
    );
  const sources = {
    read: config.credentials.read ?? def.defaultCredentials.read,
    write: config.credentials.write ?? def.defaultCredentials.write,
  };
  const credentials: Credentials = connectorManaged
    ? {}
    : await loadCredentials(sources, env, credentialOptions);
  if (!connectorManaged && !credentials.read)
    throw new StartupError(`no read credential: ${missingReadCredential(sources.read)}`);

  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        logger.warn({ err }, 'closing a resource failed');
      }
    }
  };
  try {
    const declared: ConnectorTools<C> = await def.tools(ctx);
    if (declared.close) closers.push(() => declared.close?.());
    const clients: Partial<Record<CredentialScope, C>> = {};
    const open = async (scope: CredentialScope, credential: CredentialHandle | undefined) => {
      const client = await def.openClient(scope, credential, ctx);
      closers.push(() => def.closeClient(client));
      clients[scope] = client;
    };
    await open('read', credentials.read);
    if (config.mode === 'read-write') {
      if (connectorManaged || credentials.write) await open('write', credentials.write);
      else
        logger.warn(
          'mode is read-write but no write credential is configured: write tools are disabled',
        );
    }
    const principalClients = config.principalCredentials
      ? await createPrincipalClients(def, ctx, config.principalCredentials, {
          env,
          onSecret: registerSecret,
        })
      : undefined;
    if (principalClients) {
      closers.push(() => principalClients.close());
      logger.info(
        {
          scopes: config.principalCredentials?.scopes,
          fallback: config.principalCredentials?.fallback,
        },
        'calls use per-principal upstream credentials (principalCredentials)',
      );
    }
    // Set once the metrics exist (they need the tool list).
    let countAuditError: (sink: string) => void = () => {};
    const trail = await openAuditTrail(config.audit, {
      server: { name: def.bin, version: def.version },
      loadSecret: async (source) =>
        (await loadCredential(source, env, credentialOptions))?.current().reveal(),
      onSinkError: (err, failure) => {
        countAuditError(failure.sink);
        logger.error({ err, sink: failure.sink }, 'audit sink failed');
      },
      onDeliveryError: (err, sink) => {
        countAuditError(sink);
        logger.warn({ err, sink }, 'audit delivery to a remote sink failed; it is retried');
      },
    });
    const audit = trail.audit;
    closers.push(() => audit.close());
    const roles: Record<string, readonly string[]> = {
      reader: [`${def.name}:read`],
      writer: [`${def.name}:read`, `${def.name}:write`],
      ...config.roles,
    };
    const perToolRates = Object.fromEntries(
      Object.entries(config.tools.settings).map(([t, s]) => [t, s.rateLimit]),
    );
    const redisUrl = (await loadCredential(config.redis.url, env, credentialOptions))?.current();
    const rateLimiter = redisUrl
      ? createRedisRateLimiter(redisUrl.reveal(), config.rateLimit, perToolRates)
      : createMemoryRateLimiter(config.rateLimit, perToolRates);
    closers.push(() => rateLimiter.close?.());
    const tools = declared.tools;
    const metrics = createServerMetrics(tools.map((t) => t.name));
    /** Set when HTTP serving starts (the only transport with a metrics listener). */
    let metricsLive = false;
    metrics.observeAudit({ healthy: () => audit.healthy, remotes: trail.remotes });
    countAuditError = (sink) => metrics.observeAuditSinkError(sink);
    const access = await createAccessControlFromConfig({
      config,
      serverName: def.bin,
      tools: tools as readonly Tool<unknown>[],
      redisUrl: redisUrl?.reveal(),
      logger,
    });
    closers.push(() => access.close());
    const pipeline = createPipeline<C>({
      server: { name: def.bin, version: def.version },
      dataSource: def.dataSource,
      tools,
      mode: config.mode,
      allow: config.tools.allow,
      toolSettings: config.tools.settings,
      roles,
      clients,
      clientFor: principalClients?.clientFor,
      limits: { maxRows: config.output.maxRows, maxBytes: config.output.maxBytes },
      redactor,
      audit,
      rateLimiter,
      logger,
      access: access.control,
      // Only a server that can be scraped counts calls: over stdio nothing reads the metrics
      // (the management listener exists only with HTTP), so calls skip prom-client entirely.
      observer: (entry) => {
        if (metricsLive) metrics.observeCall(entry);
      },
    });
    const rateLimitStore = redisUrl ? 'redis' : 'memory';
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
    let closed: Promise<void> | undefined;
    const close = () => {
      closed ??= closeAll();
      return closed;
    };
    return {
      config,
      pipeline,
      logger,
      redactor,
      close,
      async reloadPolicies() {
        const engine = access.control?.engine;
        if (!engine) {
          logger.info('SIGHUP: no policy files are configured; nothing to reload');
          return false;
        }
        const result = await engine.reload();
        if (result.ok) logger.info({ policies: result.count }, 'policies reloaded');
        else
          logger.error(
            { reason: result.reason },
            'policy reload rejected; the previous policies stay in force',
          );
        return result.ok;
      },
      async serveStdio() {
        await serveStdio(makeServer(), close, () =>
          logger.info(
            { mode: config.mode, tools: pipeline.enabledTools, rateLimitStore },
            `${def.bin} ${def.version} ready on stdio`,
          ),
        );
      },
      async serveHttp() {
        metricsLive = true;
        let resource = '';
        const authenticator = await createAuthenticator(config.auth, () => resource);
        const read = clients.read as C;
        const mtlsConfig = config.auth.mtls;
        const loadMtls = mtlsConfig
          ? () =>
              mtlsServerOptions(mtlsConfig, async () =>
                (await loadCredential(mtlsConfig.ca, env, credentialOptions))?.current().reveal(),
              )
          : undefined;
        const mtls = loadMtls ? await loadMtls() : undefined;
        const running = await serveHttp({
          http: config.http,
          mtls,
          reloadMtls: loadMtls,
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
          serverInfo: { name: def.bin, version: def.version },
          ready: async () => {
            const ready =
              audit.healthy &&
              (rateLimiter.ready ? await rateLimiter.ready() : true) &&
              (def.ready ? await def.ready(read, ctx) : true);
            metrics.setReady(ready);
            return ready;
          },
          logger,
        });
        resource = running.resource;
        logger.info(
          {
            mode: config.mode,
            tools: pipeline.enabledTools,
            auth: config.auth.mode,
            resource,
            bound: running.url,
            management: running.managementUrl,
            rateLimitStore,
          },
          `${def.bin} ${def.version} listening on ${resource}`,
        );
        return running;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
