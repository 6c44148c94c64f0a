import { type CredentialHandle, ErrorCode, StartupError, ToolError } from '@hardened-mcp/core';
import pg from 'pg';
import type { PostgresSettings } from './config.js';

/** The handle a tool gets for its credential scope. */
export interface PgHandle {
  readonly scope: 'read' | 'write';
  readonly pool: pg.Pool;
  readonly settings: PostgresSettings;
}

/** What happened after the database refused a new connection's credential. */
export interface AuthFailureEvent {
  /** The SQLSTATE of the refusal: `28P01` (wrong password) or `28000`. */
  readonly code: string;
  /**
   * `retried`: the credential was fetched again, changed, and the connection was retried once;
   * `unchanged`: fetched again, same value, not retried; `refresh_failed`: the fetch failed.
   */
  readonly outcome: 'retried' | 'unchanged' | 'refresh_failed';
  /** The fetch error for `refresh_failed` (secret-free). */
  readonly error?: unknown;
}

/** Options of {@link openPool}. */
export interface OpenPoolOptions {
  /** Told about every authentication failure of a new connection (for the server log). */
  readonly onAuthFailure?: ((event: AuthFailureEvent) => void) | undefined;
}

/** The credential behind each pool made by {@link openPool}, for {@link connectPooled}. */
const poolCredentials = new WeakMap<
  pg.Pool,
  { readonly credential: CredentialHandle; readonly options: OpenPoolOptions }
>();

/**
 * Opens a pool for one credential. The read pool's sessions start with
 * `default_transaction_read_only=on` (PostgreSQL docs §19.11.1), so even a statement that
 * slipped past every other check runs in a read-only transaction. Both pools set
 * `statement_timeout` at connection start as a floor; each transaction sets its own too.
 *
 * The credential's value is a connection URL. Each new connection reads it afresh
 * (`credential.current()`), so a rotated value is used by every connection opened after it was
 * fetched; connections already open stay as they are (PostgreSQL does not end sessions when a
 * password changes). {@link connectPooled} fetches the credential again when the database
 * refuses it. A static `Secret` is a credential whose value never changes.
 */
export function openPool(
  credential: CredentialHandle,
  scope: 'read' | 'write',
  settings: PostgresSettings,
  poolOptions: OpenPoolOptions = {},
): pg.Pool {
  // standard_conforming_strings=on: the SQL guard lexes string literals that way (the default since 9.1).
  const options = [
    `-c statement_timeout=${settings.statementTimeoutMs}`,
    `-c lock_timeout=${settings.lockTimeoutMs}`,
    '-c standard_conforming_strings=on',
  ];
  if (scope === 'read') options.push('-c default_transaction_read_only=on');
  const pool = new pg.Pool({
    max: settings.pool.max,
    idleTimeoutMillis: settings.pool.idleTimeoutMs,
    connectionTimeoutMillis: settings.pool.connectionTimeoutMs,
    application_name: `hardened-mcp-postgres:${scope}`,
    options: options.join(' '),
  });
  // pg-pool builds every new client from `pool.options` (`new Client(pool.options)`): a getter
  // makes each one read the credential's current value, which is never stored in the pool. It
  // is enumerable so that `{ ...pool.options }` (e.g. the canceller's own connection) gets the
  // current value too.
  Object.defineProperty(pool.options, 'connectionString', {
    configurable: true,
    enumerable: true,
    get: () => credential.current().reveal(),
  });
  poolCredentials.set(pool, { credential, options: poolOptions });
  // An idle client that errors (server restart) must not crash the process.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => guardMessageSize(client, settings.maxMessageBytes));
  return pool;
}

/** SQLSTATEs of a refused login: invalid_password, invalid_authorization_specification. */
const AUTH_FAILURES = new Set(['28P01', '28000']);

/**
 * Checks a client out of a pool made by {@link openPool}. When the database refuses the
 * credential of a new connection (SQLSTATE 28P01/28000, e.g. after a password rotation), the
 * credential is fetched again once (`refresh()`, shared with concurrent callers; skipped when
 * another caller already brought a new value) and, if its value changed, the connection is
 * retried once. Any other failure, or a second refusal, is thrown as it is.
 */
export async function connectPooled(pool: pg.Pool): Promise<pg.PoolClient> {
  const entry = poolCredentials.get(pool);
  const before = entry?.credential.current();
  try {
    return await pool.connect();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (entry === undefined || before === undefined || typeof code !== 'string') throw err;
    if (!AUTH_FAILURES.has(code)) throw err;
    const report = entry.options.onAuthFailure;
    let after = entry.credential.current();
    // Unless a concurrent caller has already fetched a new value, fetch it now.
    if (after.reveal() === before.reveal()) {
      try {
        after = await entry.credential.refresh();
      } catch (refreshErr) {
        report?.({ code, outcome: 'refresh_failed', error: refreshErr });
        throw err;
      }
    }
    if (after.reveal() === before.reveal()) {
      report?.({ code, outcome: 'unchanged' });
      throw err;
    }
    report?.({ code, outcome: 'retried' });
    return pool.connect();
  }
}

/** Clients whose connection was cut because the server sent a message over the limit. */
const oversized = new WeakSet<object>();

/**
 * Bounds memory per connection: node-pg buffers each backend message whole (a 500 MB row would
 * exhaust the heap and crash the process). This reads the 5-byte header of every message
 * (type, int32 length; PostgreSQL docs §55.7) as bytes arrive, ahead of the driver's parser, and
 * destroys the socket as soon as a header announces more than `limit` bytes.
 * Installed on pool `connect`, i.e. at a message boundary after ReadyForQuery.
 */
function guardMessageSize(client: pg.PoolClient, limit: number): void {
  const stream = (
    client as unknown as {
      connection?: { stream?: NodeJS.EventEmitter & { destroy(err?: Error): void } };
    }
  ).connection?.stream;
  if (!stream) return;
  const header = Buffer.alloc(5);
  let headerBytes = 0;
  let remaining = 0;
  stream.prependListener('data', (chunk: Buffer) => {
    let i = 0;
    while (i < chunk.length) {
      if (remaining > 0) {
        const skip = Math.min(remaining, chunk.length - i);
        remaining -= skip;
        i += skip;
        continue;
      }
      const take = Math.min(5 - headerBytes, chunk.length - i);
      chunk.copy(header, headerBytes, i, i + take);
      headerBytes += take;
      i += take;
      if (headerBytes === 5) {
        headerBytes = 0;
        const length = header.readUInt32BE(1) - 4;
        if (length > limit) {
          oversized.add(client);
          stream.destroy(new Error('backend message exceeds maxMessageBytes'));
          return;
        }
        remaining = length;
      }
    }
  });
}

/** Options of {@link withTransaction}. */
export interface TransactionOptions {
  readonly readOnly: boolean;
  /** `search_path` for the transaction: the allowed schemas. */
  readonly searchPath?: readonly string[] | undefined;
  readonly signal?: AbortSignal | undefined;
  /** The client's SQL, if any: class-42 messages are relayed only when they quote nothing but names from it. */
  readonly sqlText?: string | undefined;
}

/**
 * Runs `fn` in one transaction on a pooled connection:
 * `BEGIN READ ONLY` (or `READ WRITE`), then `set_config(..., is_local => true)` for
 * statement_timeout, lock_timeout, idle_in_transaction_session_timeout and search_path (bound
 * parameters, never interpolated; transaction-scoped like `SET LOCAL`). Read transactions always
 * end in ROLLBACK; write transactions COMMIT only when `fn` resolves. Afterwards `DISCARD ALL`
 * resets any session state; a connection that failed anywhere is destroyed, never reused, so
 * session state can never leak into the pool. The connection is checked out with
 * {@link connectPooled} (one credential refresh and retry when the database refuses a login).
 *
 * @throws ToolError mapped from the database error (see {@link toToolError}).
 */
export async function withTransaction<T>(
  handle: PgHandle,
  opts: TransactionOptions,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const s = handle.settings;
  let client: pg.PoolClient;
  try {
    client = await connectPooled(handle.pool);
  } catch (err) {
    throw toToolError(err, s);
  }
  let broken: Error | undefined;
  const onAbort = () => {
    broken = new Error('aborted');
    // Ends the backend's current statement; the connection is then discarded.
    void cancelBackend(handle, client);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // A socket error while the client is checked out (server restart, oversized message) fails
  // the running query; without a listener the client's 'error' event would crash the process.
  const onClientError = (err: Error) => {
    broken ??= err;
  };
  client.on('error', onClientError);
  try {
    await client.query(opts.readOnly ? 'BEGIN READ ONLY' : 'BEGIN READ WRITE');
    await client.query({
      text:
        "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)," +
        " set_config('idle_in_transaction_session_timeout', $3, true), set_config('search_path', $4, true)",
      values: [
        String(s.statementTimeoutMs),
        String(s.lockTimeoutMs),
        String(s.idleInTransactionTimeoutMs),
        (opts.searchPath ?? s.schemas).map((n) => pg.escapeIdentifier(n)).join(', '),
      ],
    });
    const result = await fn(client);
    await client.query(opts.readOnly ? 'ROLLBACK' : 'COMMIT');
    await client.query('DISCARD ALL');
    return result;
  } catch (err) {
    broken ??= err instanceof Error ? err : new Error('query failed');
    if (oversized.has(client)) {
      throw new ToolError(
        ErrorCode.LimitExceeded,
        `a row or message from the database exceeded ${s.maxMessageBytes} bytes; the query was stopped`,
        { cause: err },
      );
    }
    throw err instanceof ToolError ? err : toToolError(err, s, opts.sqlText);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    client.off('error', onClientError);
    // A failed connection is destroyed (its transaction rolls back server-side).
    client.release(broken ?? undefined);
  }
}

/**
 * Cancels the backend's running statement over a connection of its own (not from the pool: when
 * every pooled connection is busy, a pooled cancel would wait until it no longer matters).
 */
async function cancelBackend(handle: PgHandle, client: pg.PoolClient): Promise<void> {
  const pid = (client as unknown as { processID?: number }).processID;
  if (!pid) return;
  const canceller = new pg.Client({
    ...(handle.pool.options as pg.ClientConfig),
    statement_timeout: 5_000,
  });
  canceller.on('error', () => undefined);
  try {
    await canceller.connect();
    await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
  } catch {
    // best effort: the statement timeout still ends it
  } finally {
    await canceller.end().catch(() => undefined);
  }
}

/** SQLSTATE classes whose server message names only identifiers/types from the query, safe to relay. */
const RELAYABLE = new Set(['42']);

/**
 * Maps a driver/database error to a client-safe {@link ToolError}. Messages are fixed per
 * SQLSTATE (PostgreSQL docs Appendix A), except class 42 (syntax error or access rule
 * violation), whose server messages are relayed when every quoted name in them appears in the
 * client's own SQL (`sqlText`) — a cast like `quote_ident(email)::regclass` would otherwise put
 * row data into the message, outside the untrusted-data fence.
 * Never includes parameters, DETAIL, the SQL text, hosts or passwords.
 */
export function toToolError(err: unknown, s: PostgresSettings, sqlText?: string): ToolError {
  if (err instanceof ToolError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const msg = typeof e.message === 'string' ? e.message : '';
  if (code === '57014') {
    return new ToolError(
      ErrorCode.Timeout,
      `the statement was cancelled: it exceeded the statement timeout (${s.statementTimeoutMs} ms) or the call was cancelled`,
      { cause: err },
    );
  }
  if (code === '55P03')
    return new ToolError(
      ErrorCode.Timeout,
      `a lock could not be acquired within ${s.lockTimeoutMs} ms`,
      { cause: err },
    );
  if (code === '25006')
    return new ToolError(
      ErrorCode.PolicyDenied,
      'the database refused to write in a read-only transaction',
      { cause: err },
    );
  if (code === '42501')
    return new ToolError(
      ErrorCode.PolicyDenied,
      `permission denied by the database${msg.startsWith('permission denied for') ? ` (${msg})` : ''}`,
      { cause: err },
    );
  if (
    /^(08|28|3D|53|57P)/.test(code) ||
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|timeout exceeded when trying to connect|Connection terminated/i.test(
      msg,
    )
  ) {
    return new ToolError(
      ErrorCode.UpstreamUnavailable,
      'the database is unavailable; try again later',
      { cause: err },
    );
  }
  if (
    code === '23505' ||
    code === '23503' ||
    code === '23502' ||
    code === '23514' ||
    code === '23P01'
  ) {
    const what = {
      '23505': 'a unique constraint',
      '23503': 'a foreign key',
      '23502': 'a NOT NULL constraint',
      '23514': 'a check constraint',
      '23P01': 'an exclusion constraint',
    }[code];
    return new ToolError(
      ErrorCode.UpstreamError,
      `the change violates ${what} (SQLSTATE ${code}); nothing was changed`,
      { cause: err },
    );
  }
  if (code.startsWith('22'))
    return new ToolError(
      ErrorCode.UpstreamError,
      `invalid data for the statement (SQLSTATE ${code})`,
      { cause: err },
    );
  if (RELAYABLE.has(code.slice(0, 2)) && sqlText !== undefined && quotesOnlyFrom(msg, sqlText))
    return new ToolError(
      ErrorCode.UpstreamError,
      `the database rejected the statement: ${msg} (SQLSTATE ${code})`,
      { cause: err },
    );
  if (code)
    return new ToolError(
      ErrorCode.UpstreamError,
      `the database rejected the statement (SQLSTATE ${code})`,
      { cause: err },
    );
  return new ToolError(ErrorCode.Internal, 'internal error; see the server log', { cause: err });
}

/**
 * Describes a connection failure at startup in one line without secrets: host, port and
 * database come from the URL (never the password).
 */
export function describeConnectFailure(
  err: unknown,
  credential: CredentialHandle,
  what: string,
): StartupError {
  let target = 'the database';
  try {
    const url = new URL(credential.current().reveal());
    target = `PostgreSQL at ${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname && url.pathname !== '/' ? ` (database ${decodeURIComponent(url.pathname.slice(1))})` : ''}`;
  } catch {
    // keyword/value connection string: say nothing about it
  }
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    '28P01': 'password authentication failed',
    '28000': 'authentication rejected',
    '3D000': 'database does not exist',
    '53300': 'too many connections',
    '57P03': 'the server is starting up or shutting down',
  };
  const reason =
    reasons[code] ??
    (/timeout/i.test(String(e.message))
      ? 'connection timed out'
      : code
        ? `SQLSTATE ${code}`
        : 'connection failed');
  return new StartupError(`cannot connect to ${target} with the ${what}: ${reason}`, {
    cause: err,
  });
}

/**
 * Runs one statement over the extended protocol (Parse/Bind/Execute), which carries exactly one
 * statement (PostgreSQL docs §55.2.3) — also when there are no parameters, where node-pg would
 * otherwise use the simple protocol that accepts several. `queryMode` is node-pg's option.
 */
export function queryExtended<R extends pg.QueryResultRow>(
  client: pg.ClientBase,
  text: string,
  values: readonly unknown[],
): Promise<pg.QueryResult<R>> {
  return client.query<R>({ text, values: [...values], queryMode: 'extended' } as pg.QueryConfig);
}

/** True when every double-quoted segment of `message` occurs in `sql` (case-insensitively). */
function quotesOnlyFrom(message: string, sql: string): boolean {
  const lower = sql.toLowerCase();
  for (const m of message.matchAll(/"([^"]*)"/g)) {
    const quoted = (m[1] ?? '').toLowerCase();
    if (quoted !== '' && !lower.includes(quoted)) return false;
  }
  return true;
}
