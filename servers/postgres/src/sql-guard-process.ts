/**
 * The SQL guard's own process (forked by {@link createSqlGuardClient}): it loads the WASM
 * PostgreSQL parser and answers `{ id, sql }` messages with `{ id, decision }` over the IPC
 * channel. Keeping the parser out of the server process isolates its memory behaviour (the WASM
 * parser made the server's native memory from socket reads stop being returned to the OS) and
 * its faults: a query that exhausts or corrupts the parser costs a restart of this process,
 * never the server. It never writes to stdout.
 */
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
  readonly type: 'check';
  readonly id: number;
  readonly sql: string;
}

let policy: SqlGuardPolicy | undefined;

process.on('message', (message: InitMessage | CheckMessage) => {
  if (message.type === 'init') {
    policy = message.policy;
    initSqlGuard().then(
      () => process.send?.({ type: 'ready' }),
      () => process.exit(70),
    );
    return;
  }
  if (!policy) return;
  let decision: unknown;
  try {
    decision = checkReadOnlySql(message.sql, policy);
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
  process.send?.({ type: 'result', id: message.id, decision });
});
process.on('disconnect', () => process.exit(0));
