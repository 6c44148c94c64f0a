/**
 * Opens the whole audit trail a server configures (`audit` section): the checkpoint signer, the
 * remote sinks with their spools, and the `AuditLog` itself, in one call for the server assembly.
 *
 * @module
 */
import type { AuditRemoteSinkConfig, CoreConfig } from '../config.js';
import { StartupError } from '../errors.js';
import { AuditLog, type AuditLogOptions, type AuditSinkFailure } from './audit-log.js';
import { createCheckpointSigner } from './checkpoint.js';
import { openRemoteAuditSinks } from './remote-config.js';
import type { RemoteAuditSink, RemoteSinkStats } from './remote-sink.js';

type CredentialSourceOf = NonNullable<
  Extract<AuditRemoteSinkConfig, { type: 'https-json' }>['token']
>;

/** What {@link openAuditTrail} needs besides the configuration. */
export interface AuditTrailDeps {
  /** `server` of the records the log writes about itself. */
  readonly server: { readonly name: string; readonly version: string };
  /**
   * Resolves a credential source to its value, registering it with the redactor (`undefined`
   * when absent). The sinks' tokens and the checkpoint key are read once, here.
   */
  readonly loadSecret: (source: CredentialSourceOf) => Promise<string | undefined>;
  /** A failed sink operation of the log (`file`, `stderr`, a remote sink's spool). Log it. */
  readonly onSinkError: (error: unknown, failure: AuditSinkFailure) => void;
  /** A failed delivery to a remote sink (retried). Log it. */
  readonly onDeliveryError: (error: unknown, sink: string) => void;
}

/** What {@link openAuditTrail} returns. */
export interface AuditTrail {
  readonly audit: AuditLog;
  /** Delivery state of each remote sink (for `ServerMetrics.observeAudit`). */
  remotes(): RemoteSinkStats[];
}

/**
 * Opens the audit trail: `failClosed` is on (a failed sink write refuses the call), the
 * durability, file-change action, checkpoints and remote sinks come from `config`. Close it with
 * `trail.audit.close()` (that also stops the remote sinks; undelivered records stay spooled).
 *
 * @throws StartupError naming what failed (the audit file, a spool, a missing secret), never a
 *   secret value.
 */
export async function openAuditTrail(
  config: CoreConfig['audit'],
  deps: AuditTrailDeps,
): Promise<AuditTrail> {
  let remotes: RemoteAuditSink[] = [];
  try {
    const cp = config.checkpoint;
    let checkpoint: AuditLogOptions['checkpoint'];
    if (cp) {
      const key = await deps.loadSecret(cp.key);
      if (key === undefined) throw new StartupError('audit.checkpoint: the signing key is not set');
      checkpoint = { every: cp.every, signer: createCheckpointSigner(cp.algorithm, key, cp.keyId) };
    }
    remotes = await openRemoteAuditSinks(config.remote, {
      spoolDir: config.spoolDir ?? `${config.file ?? 'audit'}.spool`,
      loadSecret: deps.loadSecret,
      onError: deps.onDeliveryError,
    });
    const audit = await AuditLog.open({
      sinks: { stderr: config.stderr, file: config.file, extra: remotes },
      durability: config.durability,
      groupCommitWindowMs: config.groupCommitWindowMs,
      onFileChange: config.onFileChange,
      checkpoint,
      server: deps.server,
      failClosed: true,
      onError: deps.onSinkError,
    });
    const opened = remotes;
    return { audit, remotes: () => opened.map((sink) => sink.stats()) };
  } catch (err) {
    for (const sink of remotes) await sink.close().catch(() => {});
    throw err instanceof StartupError
      ? err
      : new StartupError(
          `cannot open the audit trail (${config.file ?? 'no file'}): ${(err as Error).message}`,
        );
  }
}
