import { openAuditTrail } from './audit/index.js';
import type { CoreConfig } from './config.js';
import type { ConnectorContext, ConnectorDefinition, ConnectorTools } from './connector.js';
import { createPrincipalClients, type PrincipalClients } from './credentials/principal-clients.js';
import {
  type Credentials,
  loadCredential,
  loadCredentials,
  type Secret,
  secretFragments,
} from './credentials.js';
import { ErrorCode, StartupError } from './errors.js';
import { createAuthenticator } from './http/auth.js';
import { identityFromAuthInfo } from './http/edge-auth.js';
import type { RunningHttpServer } from './http/http-server.js';
import { mtlsServerOptions } from './http/mtls.js';
import { resolveStdioIdentity } from './identity.js';
import { createLogger, type Logger } from './logger.js';
import { createMcpServer, serveStdio } from './mcp-server.js';
import { createServerMetrics } from './metrics.js';
import { type CallRequest, type CallResponse, createPipeline, type Pipeline } from './pipeline.js';
import { createAccessControlFromConfig } from './policy/from-config.js';
import { createMemoryRateLimiter, createRedisRateLimiter } from './rate-limit.js';
import { createRedactor, type Redactor } from './redaction/index.js';
import { serveHttp } from './serve-http.js';
import { type CredentialScope, secretRegistry, type Tool } from './tool.js';

/** A parsed configuration of a connector: the core keys plus its own section. */
export type ConnectorConfig = Readonly<CoreConfig> & { readonly [key: string]: unknown };

/** Options of {@link assemble}. */
export interface AssembleOptions {
  /** Where `env` credential sources are read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Values of the connector's extra boolean CLI flags. */
  readonly flags?: Readonly<Record<string, boolean>> | undefined;
  /**
   * Opens the upstream clients (the connector's `openClient`: its startup checks, e.g. the
   * Postgres role checks) in the background instead of before the pipeline is built, so the
   * server answers `initialize` and `tools/list` first (stdio startup, issue 14). They begin on
   * the turn after the first `tools/list` answer, at the first call, at close, or
   * {@link DEFERRED_CHECKS_FALLBACK_MS} after `assemble` resolves, whichever comes first.
   * Fail closed: every `tools/call` waits for them, and when they fail it is refused (audited)
   * and {@link AssembledServer.started} rejects with their error, which stops serving. Default
   * false: `assemble` resolves only once every client is open, as before.
   */
  readonly deferClientChecks?: boolean | undefined;
}

/** A server built from a definition and a configuration, not yet serving. */
export interface AssembledServer {
  readonly config: ConnectorConfig;
  readonly pipeline: Pipeline;
  readonly logger: Logger;
  readonly redactor: Redactor;
  /**
   * Settles when the upstream clients are open and their startup checks are done: resolves when
   * they passed, rejects with their error (a {@link StartupError} when the connector refuses)
   * otherwise. Already resolved unless {@link AssembleOptions.deferClientChecks} was set.
   */
  readonly started: Promise<void>;
  /**
   * Serves MCP over stdio until the client closes stdin or a signal arrives, then closes
   * everything. With deferred client checks it stops serving as soon as they fail and then
   * rejects with their error (so the command line reports it and exits 1, as when they run
   * before serving).
   */
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
 * With {@link AssembleOptions.deferClientChecks} the clients (read, then write, then per-principal
 * clients) are opened after the pipeline is built, while the server already answers
 * `initialize` and `tools/list`; calls wait for them ({@link AssembledServer.started}).
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
  const deferred = options.deferClientChecks === true;
  try {
    const declared: ConnectorTools<C> = await def.tools(ctx);
    if (declared.close) closers.push(() => declared.close?.());
    // The scopes that get a client are known from configuration alone: read, and write in
    // read-write mode with a write credential (or a connector that obtains its own).
    const scopes: CredentialScope[] =
      config.mode === 'read-write' && (connectorManaged || credentials.write)
        ? ['read', 'write']
        : ['read'];
    const clients: Partial<Record<CredentialScope, C>> = {};
    let principalClients: PrincipalClients<C> | undefined;
    /** The clients in contract order (read, then write), then the per-principal clients. */
    const openClients = async () => {
      for (const scope of scopes) {
        const client = await def.openClient(scope, credentials[scope], ctx);
        closers.push(() => def.closeClient(client));
        clients[scope] = client;
        if (scope === 'read' && config.mode === 'read-write' && !scopes.includes('write'))
          logger.warn(
            'mode is read-write but no write credential is configured: write tools are disabled',
          );
      }
      if (config.principalCredentials) {
        const opened = await createPrincipalClients(def, ctx, config.principalCredentials, {
          env,
          onSecret: registerSecret,
        });
        principalClients = opened;
        closers.push(() => opened.close());
        logger.info(
          {
            scopes: config.principalCredentials.scopes,
            fallback: config.principalCredentials.fallback,
          },
          'calls use per-principal upstream credentials (principalCredentials)',
        );
      }
    };
    if (deferred) {
      // Until openClients replaces them, each scope holds a stand-in that fails any use: the
      // pipeline learns from it which scopes exist (the tool list), and calls are held back
      // until the real clients are in place (see `served` below).
      for (const scope of scopes) clients[scope] = notYetOpen(scope) as C;
    } else {
      await openClients();
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
      clientFor: config.principalCredentials
        ? (scope, identity, shared) => {
            if (!principalClients) throw new Error('per-principal clients are not open yet');
            return principalClients.clientFor(scope, identity, shared);
          }
        : undefined,
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
    // Deferred: the clients open (and their checks run) once the first tool list has been
    // answered (or at the first call, at close, or after DEFERRED_CHECKS_FALLBACK_MS at the
    // latest), so their work (connections, the connector's helper processes) does not compete
    // with answering `initialize` and `tools/list` on a small machine.
    let begin: () => void = () => {};
    const begun = new Promise<void>((resolve) => {
      begin = resolve;
    });
    let fallback: NodeJS.Timeout | undefined;
    const beginChecks = () => {
      if (fallback) clearTimeout(fallback);
      fallback = undefined;
      begin();
    };
    if (deferred) fallback = setTimeout(beginChecks, DEFERRED_CHECKS_FALLBACK_MS);
    const started = deferred ? begun.then(openClients) : Promise.resolve();
    let open = !deferred;
    started.then(
      () => {
        open = true;
      },
      () => undefined, // reported by serveStdio (or whoever awaits `started`)
    );
    /** Calls waiting for the checks (answered before a failed start closes the transport). */
    const waiting = new Set<Promise<CallResponse>>();
    /** A call that arrived before the checks finished: it runs after them, or is refused. */
    const afterChecks = (request: CallRequest) => {
      const call = refuseOrCall(request);
      waiting.add(call);
      const done = () => waiting.delete(call);
      call.then(done, done);
      return call;
    };
    const refuseOrCall = async (request: CallRequest) => {
      beginChecks();
      try {
        await started;
      } catch {
        // The refusal is answered once its record is durable, like any call's answer.
        await pipeline.recordRefusalDurably({
          identity: request.identity,
          tool: request.name,
          code: ErrorCode.UpstreamUnavailable,
          reason: 'startup_checks_failed',
          arguments: request.arguments,
        });
        return startupFailed;
      }
      return pipeline.callTool(request);
    };
    /** The pipeline as transports see it: calls wait for the startup checks (fail closed). */
    const served: Pipeline = deferred
      ? {
          ...pipeline,
          // The checks begin on the turn after the first tool list: its answer is written first.
          listTools: () => {
            if (!open) setImmediate(beginChecks);
            return pipeline.listTools();
          },
          callTool: (request) => (open ? pipeline.callTool(request) : afterChecks(request)),
        }
      : pipeline;
    const makeServer = () =>
      createMcpServer({
        info: { name: def.bin, version: def.version, title: def.title },
        instructions: def.instructions,
        pipeline: served,
        identity: (client, auth) =>
          identityFromAuthInfo(auth, client) ??
          resolveStdioIdentity(config.identity, config.defaultRoles, client),
        logger,
      });
    let closed: Promise<void> | undefined;
    const close = () => {
      // Clients still opening are closed too: closing waits for the checks to settle. Checks
      // not begun yet run first (as when they began at once), so their verdict still decides
      // the exit status.
      beginChecks();
      closed ??= started.then(closeAll, closeAll);
      return closed;
    };
    return {
      config,
      pipeline: served,
      logger,
      redactor,
      started,
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
        const server = makeServer();
        let connected = false;
        let failed = false;
        // A failed startup check stops serving (the transport closes, then everything else),
        // once the calls that waited for it have their refusal (written before the next turn).
        const stop = () =>
          void Promise.allSettled([...waiting]).then(() => setImmediate(() => void server.close()));
        started.catch(() => {
          failed = true;
          if (connected) stop();
        });
        await serveStdio(server, close, () => {
          connected = true;
          if (failed) stop();
          // "Ready" once the checks passed too: a refusal stays the one line on stderr.
          started.then(
            () =>
              logger.info(
                { mode: config.mode, tools: pipeline.enabledTools, rateLimitStore },
                `${def.bin} ${def.version} ready on stdio`,
              ),
            () => undefined,
          );
        });
        await started;
      },
      async serveHttp() {
        // Over HTTP the listener opens only once the checks passed (readiness probes, load
        // balancers): nothing is served on an unchecked client.
        await started;
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
          pipeline: served,
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

/**
 * With deferred client checks, the longest wait (ms) from the end of `assemble` to the start of
 * the connector's checks when no tool list, call or close has begun them: a client that never
 * lists tools still learns of a failed check (the server exits) about this soon.
 */
export const DEFERRED_CHECKS_FALLBACK_MS = 250;

/** What a call gets when the startup checks it waited for failed (the server is stopping). */
const startupFailed: CallResponse = {
  kind: 'result',
  result: {
    isError: true,
    content: [
      {
        type: 'text',
        text: `${ErrorCode.UpstreamUnavailable}: the server failed its startup checks and is stopping; nothing was executed`,
      },
    ],
    _meta: { 'hardened-mcp/error': { code: ErrorCode.UpstreamUnavailable } },
  },
};

/**
 * The stand-in of a client whose startup checks are still running (deferred client checks):
 * any use throws, so nothing can reach the upstream through it. Calls never see it (they wait
 * for the real client), and the pipeline reads its clients at call time.
 */
function notYetOpen(scope: CredentialScope): object {
  return new Proxy(
    {},
    {
      get() {
        throw new Error(`the ${scope} client is not open yet (its startup checks are running)`);
      },
    },
  );
}
