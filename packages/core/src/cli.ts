import { parseArgs } from 'node:util';
import { assemble, type ConnectorConfig } from './assemble.js';
import { type CoreConfig, defineConfigSchema, parseConfig, readConfigFile } from './config.js';
import type { ConnectorDefinition } from './connector.js';
import { StartupError } from './errors.js';
import { isLoopback } from './http/request-guards.js';
import { effectivePolicy, policyToMarkdown } from './policy/print-policy.js';
import { createRedactor } from './redaction/index.js';
import { reloadAll } from './reload.js';

/**
 * The bin entry point of every connector: parses `argv`, reads and validates configuration,
 * {@link assemble}s the server and serves the configured transport until stdin closes (stdio) or
 * SIGTERM/SIGINT (http). SIGHUP reloads the Cedar policies (both transports) and, on http, the server's reloadables (`reload.ts`).
 *
 * Exit codes: 0 on a clean shutdown; 1 on a startup error (one line on stderr, no stack trace,
 * no secret); 2 on a usage error.
 */
export async function runConnectorCli<S, C>(
  def: ConnectorDefinition<S, C>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<number> {
  // Until the configured redactor exists, messages pass one with the defaults.
  let redact = (text: string) => createRedactor().redactString(text).value;
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
          'print-policy': { type: 'boolean' },
          format: { type: 'string' },
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
    const config = parseConfig(
      defineConfigSchema(def.name, def.configSection),
      merged,
    ) as unknown as ConnectorConfig;
    if (args.healthcheck) return await healthcheck(config);
    if (args['print-policy']) {
      const format = typeof args.format === 'string' ? args.format : 'md';
      if (format !== 'md' && format !== 'json') {
        process.stderr.write(`${def.bin}: --format must be md or json\n${usage(def)}`);
        return 2;
      }
      // Nothing is started and no credential is read: the policy is computed from configuration.
      const policy = await effectivePolicy(def, config);
      process.stdout.write(
        format === 'json' ? `${JSON.stringify(policy, null, 2)}\n` : policyToMarkdown(policy),
      );
      return 0;
    }
    if (
      config.transport === 'http' &&
      !isLoopback(config.http.host) &&
      config.auth.mode === 'none'
    ) {
      throw new StartupError(
        `refusing to listen on ${config.http.host} without authentication: set auth.mode to oauth or api-key, or bind to 127.0.0.1`,
      );
    }
    const flags = Object.fromEntries(
      Object.keys(def.flags ?? {}).map((f) => [f, args[f] === true]),
    );
    // Over stdio (for a connector that allows it) the tool list is answered while the
    // connector's client checks run; calls wait for them, and a failed check stops the server
    // with its error (exit 1), as before.
    const server = await assemble(def, config, {
      flags,
      deferClientChecks: config.transport === 'stdio' && def.deferClientChecks === true,
    });
    redact = (text) => server.redactor.redactString(text).value;
    // SIGHUP reloads the Cedar policies (an invalid set keeps the old one); calls keep running.
    process.on('SIGHUP', () => {
      void server.reloadPolicies();
    });
    if (config.transport === 'stdio') {
      await server.serveStdio();
      return 0;
    }
    let running: Awaited<ReturnType<typeof server.serveHttp>>;
    try {
      running = await server.serveHttp();
    } catch (err) {
      await server.close();
      throw err;
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        server.logger.info({ signal }, 'shutting down: draining in-flight calls');
        process.off('SIGHUP', hangup);
        void running
          .close()
          .then(() => server.close())
          .catch((err: unknown) => server.logger.error({ err }, 'shutdown failed'))
          .finally(resolve);
      };
      // SIGHUP re-reads what can change without a restart (reload.ts), e.g. the mTLS CRL.
      const hangup = () => {
        server.logger.info({ signal: 'SIGHUP' }, 'reloading');
        void reloadAll(running.reloadables, server.logger);
      };
      process.on('SIGHUP', hangup);
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  } catch (err) {
    // Unexpected errors: name and message only (redacted), never a stack trace.
    const message =
      err instanceof StartupError
        ? err.message
        : `startup failed: ${err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error'}`;
    process.stderr.write(`${def.bin}: ${redact(message)}\n`);
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
    '  --print-policy              print the effective access-control policy and exit (nothing starts)\n' +
    '  --format md|json            format of --print-policy (default md)\n' +
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
