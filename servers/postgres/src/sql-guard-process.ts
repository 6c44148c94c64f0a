/**
 * The SQL guard's own process (forked by {@link createSqlGuardClient}): it loads the WASM
 * PostgreSQL parser and answers `{ id, sql }` messages with `{ id, decision }` over the IPC
 * channel. Keeping the parser out of the server process isolates its memory behaviour (the WASM
 * parser made the server's native memory from socket reads stop being returned to the OS) and
 * its faults: a query that exhausts or corrupts the parser costs a restart of this process,
 * never the server. It never writes to stdout.
 */
import { toGenericSql } from './generic-sql.js';
import {
  checkReadOnlySql,
  initSqlGuard,
  isSqlGuardFaulted,
  type SqlGuardPolicy,
} from './sql-guard.js';

interface InitMessage {
  readonly type: 'init';
  readonly policy: SqlGuardPolicy;
}
interface CheckMessage {
  /** `check`: the guard's verdict; `generic`: the verdict, then the constants-as-parameters form. */
  readonly type: 'check' | 'generic';
  readonly id: number;
  readonly sql: string;
}

let policy: SqlGuardPolicy | undefined;

/**
 * Sends to the server. A server that has already disconnected (it is shutting down, e.g. while
 * this process was still loading its parser) gets nothing and this process exits quietly,
 * instead of dying on an unhandled EPIPE with a stack trace on the stderr it shares.
 */
function reply(message: object, then?: () => void): void {
  if (!process.connected) process.exit(0);
  process.send?.(message, undefined, {}, (err: Error | null) => {
    if (err) process.exit(0);
    then?.();
  });
}

process.on('message', (message: InitMessage | CheckMessage) => {
  if (message.type === 'init') {
    policy = message.policy;
    initSqlGuard().then(
      () => reply({ type: 'ready' }),
      () => process.exit(70),
    );
    return;
  }
  if (!policy) return;
  let decision: unknown;
  try {
    // postgres_explain only plans: value-builder sizes and constant weights are not limited.
    decision = checkReadOnlySql(message.sql, policy, { planOnly: message.type === 'generic' });
    if (message.type === 'generic' && (decision as { ok?: unknown }).ok === true) {
      // For postgres_explain: plan without evaluating any client value (see generic-sql.ts).
      // The rewritten text must pass the guard too.
      const generic = toGenericSql(message.sql);
      decision =
        generic.ok && checkReadOnlySql(generic.sql, policy, { planOnly: true }).ok
          ? {
              ...(decision as object),
              generic: { sql: generic.sql, paramCount: generic.paramCount },
            }
          : {
              ok: false,
              code: 'sql_parse_error',
              message:
                "the statement cannot be planned without evaluating its constants (e.g. a typed literal with a trailing qualifier such as interval '1' day); write CAST(... AS type) instead",
            };
    }
  } catch {
    decision = { ok: false, code: 'sql_parse_error', message: 'the SQL checker failed; try again' };
  }
  if (isSqlGuardFaulted()) {
    // The parser's memory may be corrupt: answer this one (refused) and exit; the server starts
    // a fresh checker for the next statement.
    process.send?.(
      {
        type: 'result',
        id: message.id,
        decision: {
          ok: false,
          code: 'sql_parse_error',
          message: 'the SQL could not be checked; the checker was restarted',
        },
      },
      () => process.exit(75),
    );
    return;
  }
  reply({ type: 'result', id: message.id, decision });
});
process.on('disconnect', () => process.exit(0));
