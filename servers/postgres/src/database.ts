import {
  type CredentialHandle,
  ErrorCode,
  type Identity,
  StartupError,
  ToolError,
} from '@hardened-mcp/core';
import pg from 'pg';
import type { PostgresSettings } from './config.js';
import { type CallSession, callSessionFor } from './database-roles.js';

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
  // search_path=pg_catalog: the server's own statements (the settings statement is parsed before
  // it sets the transaction's search_path; startup and catalog queries) resolve every unqualified
  // function and operator in pg_catalog only, whatever the login role's default search_path puts
  // first (a schema others can create in would let them shadow `set_config`: CVE-2018-1058's
  // class). Every transaction still sets its own search_path to the allowed schemas.
  const options = [
    `-c statement_timeout=${settings.statementTimeoutMs}`,
    `-c lock_timeout=${settings.lockTimeoutMs}`,
    '-c standard_conforming_strings=on',
    '-c search_path=pg_catalog',
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
  poolGates.set(pool, new FairGate(settings.pool.max));
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

/** Clients whose connection a reader gave up on mid-result (see {@link abandonConnection}). */
const abandoned = new WeakSet<object>();

/**
 * Stops reading a result at once by destroying the connection's socket (the backend fails on
 * its next write and ends; the rest of the result is never transferred). For a reader that has
 * all it may keep while the backend is still sending a large batch (query.ts). Inside
 * {@link withTransaction}, a result `fn` returns after this is still returned; the connection
 * is destroyed instead of being rolled back and reused.
 */
export function abandonConnection(client: pg.ClientBase): void {
  abandoned.add(client);
  (
    client as unknown as { connection?: { stream?: { destroy(): void } } }
  ).connection?.stream?.destroy();
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

/** The fair gate of each pool made by {@link openPool}. */
const poolGates = new WeakMap<pg.Pool, FairGate>();

/**
 * Shares a pool's `max` connections fairly between principals. Once a second principal has
 * used the pool, one principal holds at most `max − 1` of them (with `max` ≥ 2), so one
 * connection is always left for the others' calls; until then (a stdio server has one
 * principal) the one principal may use them all. Callers that must wait queue per principal and
 * are served round-robin, one principal after the other, never first come first served (a
 * flood of one principal would otherwise sit in front of everybody). Decisions are data:
 * {@link FairGate.canGrant}.
 */
export class FairGate {
  /** Connections a single principal may hold at once. */
  readonly perPrincipal: number;
  private inUse = 0;
  /** The first principal seen, and whether another one has been seen since. */
  private first: string | undefined;
  private shared = false;
  private readonly held = new Map<string, number>();
  /** Waiters per principal; the Map's order is the round-robin order. */
  private readonly queues = new Map<string, (() => void)[]>();

  /** @param max - connections in the pool (`postgres.pool.max`). */
  constructor(readonly max: number) {
    this.perPrincipal = max > 1 ? max - 1 : 1;
  }

  /** True when `principal` may take a connection now. */
  canGrant(principal: string): boolean {
    if (this.inUse >= this.max) return false;
    return !this.shared || (this.held.get(principal) ?? 0) < this.perPrincipal;
  }

  /**
   * Waits for a turn of `principal` (at most `waitMs` ms, or until `signal` aborts) and returns
   * the function that gives it back (call it exactly once).
   *
   * @throws ToolError `upstream_unavailable` when no turn came within `waitMs`; the abort reason
   * when `signal` aborted.
   */
  async enter(principal: string, waitMs: number, signal?: AbortSignal): Promise<() => void> {
    if (this.first === undefined) this.first = principal;
    else if (principal !== this.first) this.shared = true;
    if (!this.canGrant(principal)) {
      await new Promise<void>((resolve, reject) => {
        const queue = this.queues.get(principal) ?? [];
        this.queues.set(principal, queue);
        const cleanup = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          const i = queue.indexOf(wake);
          if (i >= 0) queue.splice(i, 1);
          if (queue.length === 0 && this.queues.get(principal) === queue)
            this.queues.delete(principal);
        };
        const wake = () => {
          cleanup();
          resolve();
        };
        const onAbort = () => {
          cleanup();
          reject(signal?.reason ?? new Error('aborted'));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new ToolError(
              ErrorCode.UpstreamUnavailable,
              'every database connection is busy; try again later',
            ),
          );
        }, waitMs);
        timer.unref?.();
        signal?.addEventListener('abort', onAbort, { once: true });
        queue.push(wake);
      });
      // dispatch() took the connection for this waiter before waking it.
    } else {
      this.take(principal);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      const n = (this.held.get(principal) ?? 1) - 1;
      if (n > 0) this.held.set(principal, n);
      else this.held.delete(principal);
      this.dispatch();
    };
  }

  private take(principal: string): void {
    this.inUse++;
    this.held.set(principal, (this.held.get(principal) ?? 0) + 1);
  }

  /**
   * Gives a free connection to the next waiter, round-robin over principals. The connection is
   * taken for it before it wakes, so a caller arriving meanwhile cannot jump the queue.
   */
  private dispatch(): void {
    for (const [principal, queue] of this.queues) {
      if (!this.canGrant(principal)) continue;
      const wake = queue[0];
      if (!wake) continue;
      // Served: the principal moves to the end of the round.
      this.queues.delete(principal);
      if (queue.length > 1) this.queues.set(principal, queue);
      this.take(principal);
      wake();
      return;
    }
  }
}

/** Options of {@link withTransaction}. */
export interface TransactionOptions {
  readonly readOnly: boolean;
  /** `search_path` for the transaction: the allowed schemas. */
  readonly searchPath?: readonly string[] | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * The client's SQL, if any. No longer changes the error message (database text only ever goes
   * to {@link ToolError.detail}); kept so existing callers compile.
   */
  readonly sqlText?: string | undefined;
  /** Whose call this is: connections are shared fairly between principals ({@link FairGate}). */
  readonly principal?: string | undefined;
  /**
   * The caller. Required when `postgres.databaseRoles` is configured: the transaction runs as
   * the principal's mapped role (see database-roles.ts); without it the call is refused.
   */
  readonly identity?: Identity | undefined;
  /**
   * Statements (made for the checked-out client) sent in the same round trip as `BEGIN` and the settings (pipelined, each with its
   * own bound parameters, run in order inside the transaction after the settings); their results
   * are `fn`'s second argument, in order. The first one that fails fails the call (the ones after
   * it fail too: the transaction is aborted).
   */
  readonly first?: ((client: pg.PoolClient) => readonly (string | pg.QueryConfig)[]) | undefined;
  /**
   * When `first` returns statements: the settings statement also sets `plan_cache_mode` to
   * `force_generic_plan` (transaction-locally), so they are bound on their generic plans, and the
   * last of them must set it back to `auto` (the catalog check does in its own select list,
   * catalog-check.ts `CATALOG_CHECK_SQL`). Ignored when `first` returns none.
   */
  readonly firstOnGenericPlan?: boolean | undefined;
}

/**
 * The names of the settings statement's four forms ({@link transactionSettings}: with or without
 * a {@link CallSession}, with or without the switch to generic plans), each prepared once per
 * connection by node-pg (a name stands for one text only).
 */
const SETTINGS_STATEMENTS = {
  plain: 'hmcp_settings',
  generic: 'hmcp_settings_generic',
  session: 'hmcp_settings_session',
  sessionGeneric: 'hmcp_settings_session_generic',
} as const;

/**
 * The server's own prepared statements, kept on a pooled connection across calls (node-pg's
 * named statements: the catalog check's `hmcp_catalog` and the settings statement's forms);
 * fixed identifiers. The per-call reset of read transactions ({@link READ_END_SQL}) keeps them
 * and destroys a connection that holds any other; `DISCARD ALL` (write transactions) drops them,
 * and node-pg is told so.
 */
export const KEPT_STATEMENTS: readonly string[] = [
  'hmcp_catalog',
  ...Object.values(SETTINGS_STATEMENTS),
];

/**
 * How a read transaction ends, in one simple-protocol round trip (fixed text, no values):
 * `ROLLBACK`, then what `DISCARD ALL` does (PostgreSQL docs, DISCARD) except `DEALLOCATE ALL`
 * and `DISCARD PLANS`, which would throw away the server's own prepared catalog check and its
 * plan: `CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; DISCARD TEMP;
 * DISCARD SEQUENCES; SELECT pg_catalog.pg_advisory_unlock_all()`. `DISCARD ALL` itself cannot run in a
 * multi-statement string (it refuses a transaction block). The last statement also counts
 * prepared statements other than {@link KEPT_STATEMENTS} (the SQL guard accepts no `PREPARE`,
 * and `hmcp_explain` is deallocated by its tool), and any made by SQL `PREPARE` (`from_sql`)
 * even under a kept name: ours are protocol-level (node-pg's Parse), and node-pg would bind a
 * stand-in under our name in the next call instead of the settings statement or the catalog
 * check. Anything but 0 destroys the connection. The
 * unlock and the count share one `SELECT` (one statement less to parse, plan and run per call;
 * neither depends on the other, nor on the two `DISCARD`s before them).
 * Cached plans stay: PostgreSQL re-plans when the role (row security) or search_path differ.
 */
export const READ_END_SQL =
  'ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *;' +
  ' DISCARD TEMP; DISCARD SEQUENCES;' +
  ' SELECT pg_catalog.pg_advisory_unlock_all() AS unlocked,' +
  ' (SELECT pg_catalog.count(*)::int FROM pg_prepared_statements' +
  ` WHERE from_sql OR name NOT IN (${KEPT_STATEMENTS.map((n) => `'${n}'`).join(', ')})) AS foreign_statements`;

/**
 * Tells node-pg that the connection has no prepared statement any more (after `DISCARD ALL`):
 * it keeps the names it parsed per connection (`connection.parsedStatements`, pg 8.x) and would
 * otherwise bind a statement that no longer exists.
 */
function forgetPreparedStatements(client: pg.ClientBase): void {
  const parsed = (client as unknown as { connection?: { parsedStatements?: object } }).connection
    ?.parsedStatements as Record<string, unknown> | undefined;
  if (parsed) for (const name of Object.keys(parsed)) delete parsed[name];
}

/**
 * Sends `queries` without waiting between them (node-pg's pipeline mode: each is its own
 * Parse/Bind/Execute/Sync, or simple Query, segment) and waits for all: one round trip. The
 * client is in pipeline mode only while they are in flight (pg-cursor refuses it).
 *
 * @returns the results in order.
 * @throws the error of the first query (in order) that failed.
 */
export async function pipelined(
  client: pg.ClientBase,
  queries: readonly (string | pg.QueryConfig)[],
): Promise<pg.QueryResult[]> {
  const mode = client as unknown as {
    pipeline: boolean;
    connection?: { stream?: { cork?(): void; uncork?(): void } };
  };
  mode.pipeline = true;
  let settled: PromiseSettledResult<pg.QueryResult>[];
  try {
    // pg submits each pipelined query synchronously inside client.query and corks the socket
    // around each one (query.js); corking around all of them (cork nests) sends the round
    // trip's messages in one write (one system call) instead of one per statement. The bytes
    // and their order on the wire are unchanged.
    const stream = mode.connection?.stream;
    let sent: Promise<pg.QueryResult>[];
    stream?.cork?.();
    try {
      sent = queries.map((q) => client.query(q as pg.QueryConfig) as Promise<pg.QueryResult>);
    } finally {
      stream?.uncork?.();
    }
    settled = await Promise.allSettled(sent);
  } finally {
    mode.pipeline = false;
  }
  const results: pg.QueryResult[] = [];
  for (const r of settled) {
    if (r.status === 'rejected') throw r.reason;
    results.push(r.value);
  }
  return results;
}

/**
 * How long past the statement timeout a call may hold its connection before the server gives
 * up on it (ms): it answers the caller with `timeout`, cancels the backend, closes the
 * connection and, if the backend is still there `WATCHDOG_GRACE_MS` later, terminates it.
 */
export const WATCHDOG_GRACE_MS = 1_000;

/**
 * Runs `fn` in one transaction on a pooled connection:
 * `BEGIN READ ONLY` (or `READ WRITE`), then `pg_catalog.set_config(..., is_local => true)` for
 * statement_timeout, lock_timeout, idle_in_transaction_session_timeout, search_path and jit (bound
 * parameters, never interpolated; transaction-scoped like `SET LOCAL`), then `opts.first`, all
 * pipelined in one round trip ({@link pipelined}). Read transactions always end in ROLLBACK and
 * the narrow reset of {@link READ_END_SQL}, in one more round trip; write transactions COMMIT
 * only when `fn` resolves, then `DISCARD ALL`. A connection that failed anywhere (or kept a
 * prepared statement that is not ours) is destroyed, never reused, so session state can never
 * leak into the pool. The connection is checked out with
 * {@link connectPooled} (one credential refresh and retry when the database refuses a login),
 * after a turn at the pool's {@link FairGate} for `opts.principal`.
 *
 * With `postgres.databaseRoles`, the same `set_config` round trip also switches the transaction
 * to the principal's database role (`pg_catalog.set_config('role', …, true)`, which is `SET LOCAL ROLE`:
 * PostgreSQL docs §9.28.1 and SET ROLE) and sets `hardened_mcp.principal` and
 * `hardened_mcp.claims` transaction-locally; no round trip is added. A principal with no mapped
 * role is refused before a connection is taken (`forbidden`).
 *
 * Time is bounded on the server's side too: PostgreSQL does not interrupt everything at the
 * statement timeout (a backend blocked writing to its socket ignores query cancels; some
 * operators run long loops without an interrupt check). `statementTimeoutMs` +
 * {@link WATCHDOG_GRACE_MS} after checkout, the caller gets `timeout`, a protocol cancel
 * request is sent (no privilege needed, PostgreSQL docs §55.2.8), the connection's socket is
 * destroyed (a backend blocked on its socket fails at once), and {@link WATCHDOG_GRACE_MS}
 * later `pg_terminate_backend` is called for the backend on a fresh connection of the same
 * credential (a role may signal its own backends, PostgreSQL docs §9.28.2).
 *
 * @throws ToolError mapped from the database error (see {@link toToolError}); `timeout` from
 * the watchdog; `upstream_unavailable` when no connection turn came within
 * `pool.connectionTimeoutMs`.
 */
export async function withTransaction<T>(
  handle: PgHandle,
  opts: TransactionOptions,
  fn: (client: pg.PoolClient, first: readonly pg.QueryResult[]) => Promise<T>,
): Promise<T> {
  const s = handle.settings;
  // Resolved before a connection is taken: an unmapped principal never reaches the database.
  const session: CallSession | undefined = s.databaseRoles
    ? callSessionFor(s.databaseRoles, opts.identity, handle.scope)
    : undefined;
  const gate = poolGates.get(handle.pool);
  let leave: (() => void) | undefined;
  try {
    leave = await gate?.enter(opts.principal ?? '', s.pool.connectionTimeoutMs, opts.signal);
  } catch (err) {
    throw toToolError(err, s);
  }
  let client: pg.PoolClient;
  try {
    client = await connectPooled(handle.pool);
  } catch (err) {
    leave?.();
    throw toToolError(err, s);
  }
  let broken: Error | undefined;
  const onAbort = () => {
    broken ??= new Error('aborted');
    // Ends the backend's current statement; the connection is then discarded.
    cancelBackend(handle, client);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // A socket error while the client is checked out (server restart, oversized message) fails
  // the running query; without a listener the client's 'error' event would crash the process.
  const onClientError = (err: Error) => {
    broken ??= err;
  };
  client.on('error', onClientError);
  let released = false;
  let restoreQuery = (): void => undefined;
  let commit = async (): Promise<void> => undefined;
  const release = () => {
    if (released) return;
    released = true;
    restoreQuery();
    opts.signal?.removeEventListener('abort', onAbort);
    // A failed connection is destroyed (its transaction rolls back server-side). It may still
    // report a socket error after that: keep a listener.
    if (broken) client.on('error', () => undefined);
    client.off('error', onClientError);
    client.release(broken ?? undefined);
    leave?.();
  };

  const run = async (): Promise<T> => {
    try {
      // One round trip: BEGIN, the settings and the caller's first statement are pipelined.
      const first = opts.first?.(client) ?? [];
      const opened = await pipelined(client, [
        opts.readOnly ? 'BEGIN READ ONLY' : 'BEGIN READ WRITE',
        transactionSettings(
          s,
          opts.searchPath,
          session,
          opts.firstOnGenericPlan === true && first.length > 0,
        ),
        ...first,
      ]);
      const result = await fn(client, opened.slice(2));
      if (abandoned.has(client)) {
        // Only readers abandon (query.ts); a write transaction must never be cut short.
        broken ??= new Error('connection abandoned after the result was complete');
        if (!opts.readOnly) throw new Error('a write transaction was abandoned');
        return result;
      }
      if (opts.readOnly) {
        // One round trip: ROLLBACK and the session reset, then the check that no prepared
        // statement but ours survived (a connection that fails it is destroyed).
        const ended = await client.query(READ_END_SQL);
        const check = Array.isArray(ended) ? ended.at(-1) : ended;
        const foreign = (check?.rows?.[0] as { foreign_statements?: unknown } | undefined)
          ?.foreign_statements;
        if (foreign !== 0) {
          broken ??= new Error('session state survived the reset');
        }
      } else {
        await commit();
        await client.query('DISCARD ALL');
        forgetPreparedStatements(client);
      }
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
    }
  };

  let timer: NodeJS.Timeout | undefined;
  let fire: () => void = () => undefined;
  const watchdog = new Promise<never>((_, reject) => {
    fire = () => {
      const pid = processIdOf(client);
      broken ??= new Error('watchdog: the statement outlived its timeout');
      cancelBackend(handle, client);
      reject(
        new ToolError(
          ErrorCode.Timeout,
          `the statement was stopped: it exceeded the statement timeout (${s.statementTimeoutMs} ms)`,
        ),
      );
      // Closing the socket fails a backend blocked on it at once; the pool gets its slot back.
      release();
      (
        client as unknown as { connection?: { stream?: { destroy(): void } } }
      ).connection?.stream?.destroy();
      if (pid !== undefined)
        setTimeout(() => void terminateBackend(handle, pid), WATCHDOG_GRACE_MS).unref();
    };
  });
  // The clock restarts with every statement sent on this connection, as PostgreSQL's
  // statement_timeout does (a cursor's reads belong to the statement that opened it).
  // One timer per call, restarted with `refresh()` (same delay and callback as a new
  // setTimeout, without a new Timeout object per statement).
  const arm = () => {
    if (timer === undefined) {
      timer = setTimeout(fire, s.statementTimeoutMs + WATCHDOG_GRACE_MS);
      timer.unref();
    } else timer.refresh();
  };
  const clientQuery = client.query;
  const hadOwnQuery = Object.hasOwn(client, 'query');
  (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
    arm();
    return (clientQuery as (...a: unknown[]) => unknown).apply(client, args);
  };
  restoreQuery = () => {
    if (hadOwnQuery) (client as unknown as { query: unknown }).query = clientQuery;
    else delete (client as unknown as { query?: unknown }).query;
  };
  commit = async () => {
    // A COMMIT is never cut short: its outcome must be known (the watchdog is off for it).
    clearTimeout(timer);
    await (clientQuery as (text: string) => Promise<unknown>).call(client, 'COMMIT');
  };
  try {
    return await Promise.race([run(), watchdog]);
  } finally {
    clearTimeout(timer);
    release();
  }
}

/**
 * The one `SELECT set_config(…, true), …` statement that opens every transaction: timeouts,
 * search_path, `jit` off, with `genericPlan` `plan_cache_mode` `force_generic_plan` (for the
 * statements pipelined after it, see `TransactionOptions.firstOnGenericPlan`) and, with a
 * {@link CallSession}, the role and the principal settings. Every value is a bound parameter;
 * the statement is named (one of {@link SETTINGS_STATEMENTS}, kept across calls like the
 * catalog check): PostgreSQL parses and plans it once per connection instead of per call. JIT is off because the catalog check's plan is estimated
 * above `jit_above_cost` (100,000 by default) and, on a server built with LLVM, compiling it
 * took 150–450 ms per call against 12–70 ms without (PostgreSQL 15, this machine); the calls
 * here are bounded reads where compilation does not pay (PostgreSQL docs §30.2, "When to JIT?"). `set_config('role', r, true)` fails (SQLSTATE 42501) unless the login
 * role is a member of `r` (with the SET option on PostgreSQL 16+), so a misconfigured mapping
 * refuses the call rather than running it as the login role.
 */
function transactionSettings(
  s: PostgresSettings,
  searchPath: readonly string[] | undefined,
  session: CallSession | undefined,
  genericPlan: boolean,
): pg.QueryConfig {
  const values: string[] = [
    String(s.statementTimeoutMs),
    String(s.lockTimeoutMs),
    String(s.idleInTransactionTimeoutMs),
    (searchPath ?? s.schemas).map((n) => pg.escapeIdentifier(n)).join(', '),
  ];
  let text =
    "SELECT pg_catalog.set_config('statement_timeout', $1, true), pg_catalog.set_config('lock_timeout', $2, true)," +
    " pg_catalog.set_config('idle_in_transaction_session_timeout', $3, true), pg_catalog.set_config('search_path', $4, true)," +
    " pg_catalog.set_config('jit', 'off', true)";
  // The statements pipelined after this one are bound on their generic plans; the last of them
  // switches back to `auto` (see TransactionOptions.firstOnGenericPlan).
  if (genericPlan) text += ", pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)";
  if (session) {
    text +=
      ", pg_catalog.set_config('role', $5, true), pg_catalog.set_config('hardened_mcp.principal', $6, true)," +
      " pg_catalog.set_config('hardened_mcp.claims', $7, true)";
    values.push(session.role, session.principal, session.claims);
  }
  // Prepared once per connection (named): later calls only bind and execute it, as for the
  // catalog check; the text is fixed per name, every value is a parameter.
  const name = session
    ? genericPlan
      ? SETTINGS_STATEMENTS.sessionGeneric
      : SETTINGS_STATEMENTS.session
    : genericPlan
      ? SETTINGS_STATEMENTS.generic
      : SETTINGS_STATEMENTS.plain;
  return { name, text, values };
}

/** The backend process id of a connected client (node-pg keeps it from BackendKeyData). */
function processIdOf(client: pg.ClientBase): number | undefined {
  const pid = (client as unknown as { processID?: unknown }).processID;
  return typeof pid === 'number' && pid > 0 ? pid : undefined;
}

/**
 * Asks PostgreSQL to cancel the backend's running statement with the protocol's own
 * CancelRequest (PostgreSQL docs §55.2.8: a new connection carrying the backend's process id and
 * secret key; no SQL, no privilege, and it works when every pooled connection is busy), sent through
 * node-pg's `Connection#cancel`. Best effort: the statement timeout and the watchdog still hold.
 */
function cancelBackend(handle: PgHandle, client: pg.PoolClient): void {
  const target = client as unknown as { processID?: number; secretKey?: number };
  if (!target.processID || target.secretKey === undefined) return;
  try {
    // node-pg's Connection speaks the protocol; `cancel` writes the CancelRequest message.
    const canceller = new pg.Client({ ...(handle.pool.options as pg.ClientConfig) }) as unknown as {
      host: string;
      port: number;
      connection: NodeJS.EventEmitter & {
        connect(port: number | string, host?: string): void;
        cancel(processID: number, secretKey: number): void;
      };
    };
    const con = canceller.connection;
    con.on('error', () => undefined);
    con.once('connect', () => con.cancel(target.processID as number, target.secretKey as number));
    if (canceller.host?.startsWith('/'))
      con.connect(`${canceller.host}/.s.PGSQL.${canceller.port}`);
    else con.connect(canceller.port, canceller.host);
  } catch {
    // best effort
  }
}

/**
 * Terminates a backend that outlived the watchdog, over a fresh connection of the pool's own
 * credential (not from the pool: it may be full). A role may terminate its own backends
 * (PostgreSQL docs §9.28.2); if the operator revoked `EXECUTE` on `pg_terminate_backend` from
 * the role this fails quietly, and the backend ends at its next interrupt check or socket write.
 */
async function terminateBackend(handle: PgHandle, pid: number): Promise<void> {
  const terminator = new pg.Client({
    ...(handle.pool.options as pg.ClientConfig),
    statement_timeout: 5_000,
  });
  terminator.on('error', () => undefined);
  try {
    await terminator.connect();
    await terminator.query(
      'SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND usename = current_user',
      [pid],
    );
  } catch {
    // best effort (see above)
  } finally {
    await terminator.end().catch(() => undefined);
  }
}

/** Longest database text kept in {@link ToolError.detail} (characters), cut before redaction. */
export const MAX_ERROR_DETAIL_CHARS = 1_000;

/**
 * Fixed client messages for SQLSTATE class 42 (syntax error or access rule violation),
 * PostgreSQL docs Appendix A. The server's own text names identifiers, but can also quote row
 * data (`to_tsquery(last_name)` raises 42601 quoting the value), so it is never the message.
 */
const CLASS_42: Readonly<Record<string, string>> = {
  '42601': 'a syntax error',
  '42703': 'a column that does not exist',
  '42P01': 'a relation that does not exist',
  '42883': 'a function or operator that does not exist for these argument types',
  '42702': 'an ambiguous column reference',
  '42725': 'an ambiguous function call',
  '42804': 'mismatched data types',
  '42846': 'a cast that does not exist',
  '42803': 'a grouping error (a column must appear in GROUP BY or an aggregate)',
  '42P18': 'a parameter or value whose data type cannot be determined',
  '42P02': 'a parameter that does not exist',
  '42P10': 'an invalid column reference',
  '42809': 'a wrong object type',
  '42P20': 'a windowing error',
  '42P19': 'an invalid recursion',
  '42P22': 'an indeterminate collation',
  '42704': 'an object that does not exist',
};

/**
 * Cuts the texts of a driver error in place to {@link MAX_ERROR_DETAIL_CHARS}: the error stays
 * the `cause` (for the server log), and a message that embeds a 15 MB value must not be
 * logged, redacted and kept whole.
 */
function capErrorTexts(err: unknown): void {
  if (err === null || typeof err !== 'object') return;
  const e = err as Record<string, unknown>;
  for (const key of ['message', 'detail', 'hint', 'where', 'internalQuery']) {
    const v = e[key];
    if (typeof v === 'string' && v.length > MAX_ERROR_DETAIL_CHARS) {
      try {
        e[key] = `${v.slice(0, MAX_ERROR_DETAIL_CHARS)}…`;
      } catch {
        // a read-only property: leave it
      }
    }
  }
}

/** The database's own message, cut to {@link MAX_ERROR_DETAIL_CHARS} (undefined when empty). */
function upstreamDetail(message: string): string | undefined {
  if (message === '') return undefined;
  return message.length > MAX_ERROR_DETAIL_CHARS
    ? `${message.slice(0, MAX_ERROR_DETAIL_CHARS)}…`
    : message;
}

/**
 * Maps a driver/database error to a client-safe {@link ToolError}. The message is fixed text
 * chosen by SQLSTATE (PostgreSQL docs Appendix A) and never carries database text: a server
 * message can embed row data (a cast of a value to a type, an input-syntax or constraint error,
 * `quote_ident(email)::regclass`). The server's message (its first line, without DETAIL/HINT),
 * cut to {@link MAX_ERROR_DETAIL_CHARS}, goes to {@link ToolError.detail} for the statement
 * errors of classes 22, 23, 42 and the like, which the pipeline redacts and fences as untrusted
 * data; connection, authentication and resource errors carry no detail (they may name hosts or
 * roles). Never includes parameters, DETAIL, the SQL text, hosts or passwords.
 *
 * `_sqlText` is no longer used (messages were once relayed when they quoted only the query).
 */
export function toToolError(err: unknown, s: PostgresSettings, _sqlText?: string): ToolError {
  if (err instanceof ToolError) return err;
  capErrorTexts(err);
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const msg = typeof e.message === 'string' ? e.message : '';
  const detail = upstreamDetail(msg);
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
      'permission denied by the database (SQLSTATE 42501)',
      detail === undefined ? { cause: err } : { cause: err, detail },
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
  const withDetail = detail === undefined ? { cause: err } : { cause: err, detail };
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
      withDetail,
    );
  }
  if (code.startsWith('22'))
    return new ToolError(
      ErrorCode.UpstreamError,
      `invalid data for the statement (SQLSTATE ${code})`,
      withDetail,
    );
  if (code.startsWith('42'))
    return new ToolError(
      ErrorCode.UpstreamError,
      `the database rejected the statement: ${CLASS_42[code] ?? 'a syntax error or access rule violation'} (SQLSTATE ${code})`,
      withDetail,
    );
  if (code.startsWith('54'))
    return new ToolError(
      ErrorCode.LimitExceeded,
      `the statement exceeds a database limit (SQLSTATE ${code})`,
      withDetail,
    );
  if (/^[0-9A-Z]{5}$/.test(code) && !code.startsWith('XX'))
    return new ToolError(
      ErrorCode.UpstreamError,
      `the database rejected the statement (SQLSTATE ${code})`,
      withDetail,
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
