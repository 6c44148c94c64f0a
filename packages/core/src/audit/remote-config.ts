/**
 * Builds the remote audit sinks of a configuration (`audit.remote[]`): one spool per sink under
 * `audit.spoolDir`, and the shipper of its `type`.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRemoteSinkConfig } from '../config.js';
import { createHttpsJsonShipper } from './https-shipper.js';
import { createOtlpLogsShipper } from './otlp-shipper.js';
import { type AuditShipper, RemoteAuditSink } from './remote-sink.js';
import { AuditSpool } from './spool.js';
import { createSyslogTlsShipper } from './syslog-shipper.js';

/** What {@link openRemoteAuditSinks} needs besides the configuration. */
export interface RemoteAuditSinkDeps {
  /** Spool root: each sink spools in `<spoolDir>/<name>`. */
  readonly spoolDir: string;
  /** Resolves a credential source to its value (`undefined` when absent). */
  readonly loadSecret: (source: NonNullable<TokenSource>) => Promise<string | undefined>;
  /** Called for each failed delivery, with the sink name (log it). */
  readonly onError: (error: unknown, sink: string) => void;
}

type TokenSource = Extract<AuditRemoteSinkConfig, { type: 'https-json' }>['token'];

/**
 * Opens every configured remote sink (spool first, so records left by an earlier process are
 * delivered first). Close them through the `AuditLog` they are given to.
 *
 * @throws the `fs` error when a spool directory or a CA/client file cannot be read; Error naming
 *   the sink (never the value) when a configured secret is absent.
 */
export async function openRemoteAuditSinks(
  configs: readonly AuditRemoteSinkConfig[],
  deps: RemoteAuditSinkDeps,
): Promise<RemoteAuditSink[]> {
  const sinks: RemoteAuditSink[] = [];
  for (const config of configs) {
    const ca = config.caFile ? await readFile(config.caFile) : undefined;
    const secret = async (source: TokenSource) => {
      if (!source) return undefined;
      const value = await deps.loadSecret(source);
      if (value === undefined) throw new Error(`audit sink ${config.name}: its secret is not set`);
      return value;
    };
    let shipper: AuditShipper;
    switch (config.type) {
      case 'https-json':
        shipper = createHttpsJsonShipper({
          url: config.url,
          shape: config.shape,
          token: await secret(config.token),
          index: config.index,
          ca,
        });
        break;
      case 'syslog-tls':
        shipper = createSyslogTlsShipper({
          host: config.host,
          port: config.port,
          ca,
          cert: config.clientCertFile ? await readFile(config.clientCertFile) : undefined,
          key: config.clientKeyFile ? await readFile(config.clientKeyFile) : undefined,
          appName: config.appName,
        });
        break;
      case 'otlp-http': {
        const authorization = await secret(config.authorization);
        shipper = createOtlpLogsShipper({
          url: config.url,
          headers: authorization ? { authorization } : undefined,
          ca,
        });
        break;
      }
    }
    const spool = await AuditSpool.open(join(deps.spoolDir, config.name), {
      maxBytes: config.spoolMaxBytes,
    });
    sinks.push(
      new RemoteAuditSink({
        name: config.name,
        mode: config.mode,
        spool,
        shipper,
        onError: (err) => deps.onError(err, config.name),
      }),
    );
  }
  return sinks;
}
