import type { Logger } from './logger.js';

/**
 * Something the running server re-reads on `SIGHUP` (HTTP transport): e.g. the mutual TLS
 * client CA bundle and CRL. `reload` must validate the new material completely before it
 * replaces the old; when it throws, the old stays in force.
 */
export interface Reloadable {
  /** Short name for the log, e.g. `auth.mtls ca/crl`. */
  readonly name: string;
  /** @throws Error (any) when the new material is unusable; the old one is kept. */
  reload(): Promise<void>;
}

/**
 * Reloads each of `reloadables` in order; one failure does not stop the others. Logs `info` per
 * success and `warn` per failure with the reason (the error message only, no stack trace).
 *
 * @returns the names that failed (empty when all reloaded).
 */
export async function reloadAll(
  reloadables: readonly Reloadable[],
  logger: Logger,
): Promise<string[]> {
  const failed: string[] = [];
  for (const r of reloadables) {
    try {
      await r.reload();
      logger.info({ reload: r.name }, `reloaded ${r.name}`);
    } catch (err) {
      failed.push(r.name);
      logger.warn(
        { reload: r.name, reason: err instanceof Error ? err.message : String(err) },
        `reload of ${r.name} failed: keeping the previous one`,
      );
    }
  }
  return failed;
}
