import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { SqlGuardDecision, SqlGuardPolicy } from './sql-guard.js';

/**
 * The accepted statement with every constant replaced by a parameter (see generic-sql.ts), for
 * planning without evaluating client values.
 */
export interface GenericStatement {
  readonly sql: string;
  /** The highest `$n` in `sql`. */
  readonly paramCount: number;
}

/** A verdict for `postgres_explain`: the guard's verdict plus the generic form when accepted. */
export type GenericDecision =
  | (Extract<SqlGuardDecision, { ok: true }> & { readonly generic: GenericStatement })
  | Extract<SqlGuardDecision, { ok: false }>;

/** The SQL guard, answered by a small pool of checker processes (see sql-guard-process.ts). */
export interface SqlGuardClient {
  /**
   * The guard's verdict for one statement. Fails closed: a missing or slow checker denies.
   * `principal` is whose call it is (default: one shared queue): checks queue per principal
   * and are served round-robin, one in flight per principal.
   */
  check(sql: string, principal?: string): Promise<SqlGuardDecision>;
  /** Like {@link check}, plus the constants-as-parameters form for planning (`postgres_explain`). */
  checkGeneric(sql: string, principal?: string): Promise<GenericDecision>;
  close(): Promise<void>;
}

/** Options of {@link createSqlGuardClient}. */
export interface SqlGuardClientOptions {
  /** Checker processes (default: 2, or 1 on a single-core machine). */
  readonly processes?: number | undefined;
}

/** Verdicts kept (least recently used dropped first), and the longest SQL text cached (characters). */
const CACHE_ENTRIES = 512;
const CACHE_MAX_SQL = 16_384;

/** How long one check may take in a checker before it is refused and the checker replaced (ms). */
const CHECK_TIMEOUT_MS = 5_000;

/** How long a check may wait for its turn before it is refused (ms). */
const QUEUE_TIMEOUT_MS = 10_000;

/**
 * SQL text one principal may have waiting for the checkers at once (characters): four
 * statements of the longest accepted size. More is refused at once, so a flood of large
 * statements costs its sender, not the other principals.
 */
export const MAX_QUEUED_SQL_PER_PRINCIPAL = 400_000;

const unavailable: SqlGuardDecision = {
  ok: false,
  code: 'sql_parse_error',
  message: 'the SQL checker is unavailable; try again',
};

const overQuota: SqlGuardDecision = {
  ok: false,
  code: 'sql_parse_error',
  message: `too much SQL is waiting to be checked for this principal (over ${MAX_QUEUED_SQL_PER_PRINCIPAL} characters); try again when earlier calls have finished`,
};

interface Job {
  readonly type: 'check' | 'generic';
  readonly sql: string;
  readonly principal: string;
  readonly resolve: (d: SqlGuardDecision) => void;
  timer?: NodeJS.Timeout;
}

/** One checker process. */
interface Checker {
  child: ChildProcess | undefined;
  ready: Promise<void> | undefined;
  busy: boolean;
  /** The current process's statements in flight. */
  pending: Map<number, (d: SqlGuardDecision) => void>;
}

/**
 * Forks `processes` guard processes (`node sql-guard-process.js` with an IPC channel;
 * stdin/stdout closed, stderr shared): the first, and once its parser is loaded, the others
 * (resolving then, without waiting for them). Each checker
 * answers one statement at a time; statements wait in one queue per principal, served
 * round-robin with at most one statement per principal in a checker, so one principal's
 * expensive or large statements occupy at most one checker while the others' are answered by
 * the rest. A principal's waiting text is bounded ({@link MAX_QUEUED_SQL_PER_PRINCIPAL}) and so
 * is the wait ({@link QUEUE_TIMEOUT_MS}). A checker that exits is restarted on its next
 * statement; statements in flight when it died, or that time out, are refused.
 *
 * @throws Error when the first start fails.
 */
export async function createSqlGuardClient(
  policy: SqlGuardPolicy,
  options: SqlGuardClientOptions = {},
): Promise<SqlGuardClient> {
  const script = new URL('./sql-guard-process.js', import.meta.url);
  const count = Math.max(1, options.processes ?? Math.min(2, availableParallelism()));
  let nextId = 1;
  let closed = false;
  const checkers: Checker[] = Array.from({ length: count }, () => ({
    child: undefined,
    ready: undefined,
    busy: false,
    pending: new Map(),
  }));
  /** Waiting jobs per principal; the Map's order is the round-robin order. */
  const queues = new Map<string, Job[]>();
  const queuedChars = new Map<string, number>();
  const running = new Set<string>();

  const start = (checker: Checker): Promise<void> => {
    // --liftoff-only: V8's optimizing compiler spends hundreds of MB on the parser's huge WASM
    // functions (the grammar); the baseline compiler parses as fast for statements this size.
    const proc = fork(script, [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
      execArgv: ['--liftoff-only'],
    });
    checker.child = proc;
    // Per process: a replaced process's exit must not refuse its successor's statements.
    const pending = new Map<number, (d: SqlGuardDecision) => void>();
    checker.pending = pending;
    proc.on('message', (m: { type: string; id?: number; decision?: SqlGuardDecision }) => {
      if (m.type === 'result' && m.id !== undefined) {
        const resolve = pending.get(m.id);
        pending.delete(m.id);
        resolve?.(m.decision ?? unavailable);
      }
    });
    proc.once('exit', () => {
      if (checker.child === proc) {
        checker.child = undefined;
        checker.ready = undefined;
      }
      for (const [id, resolve] of pending) {
        pending.delete(id);
        resolve(unavailable);
      }
    });
    return new Promise<void>((resolve, reject) => {
      const onMessage = (m: { type: string }) => {
        if (m.type === 'ready') {
          proc.off('message', onMessage);
          resolve();
        }
      };
      proc.on('message', onMessage);
      proc.once('exit', (code) =>
        reject(new Error(`the SQL checker exited (${code ?? 'signal'}) while starting`)),
      );
      proc.send({ type: 'init', policy });
    });
  };
  // Startup waits for one checker. The others start once it is ready, not beside it: on a small
  // machine they would compete with the server's own startup for the CPU (issue 14). A statement
  // handed to one still starting waits for it; one that fails to start is started again on its
  // next statement.
  const [first, ...others] = checkers;
  if (first) {
    first.ready = start(first);
    await first.ready;
  }
  for (const c of others) {
    c.ready = start(c);
    c.ready.catch(() => undefined); // run() awaits it and refuses the statement on failure
  }

  // Agents repeat statements; verdicts depend only on the text and the fixed policy.
  const cache = new Map<string, SqlGuardDecision>();
  const remember = (key: string, d: SqlGuardDecision) => {
    if (d === unavailable || d === overQuota || key.length > CACHE_MAX_SQL) return d;
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(key, d);
    return d;
  };
  const cached = async (
    type: 'check' | 'generic',
    sql: string,
    principal: string,
  ): Promise<SqlGuardDecision> => {
    const key = `${type}:${sql}`;
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    return remember(key, await enqueue(type, sql, principal));
  };

  return {
    check: (sql, principal = '') => cached('check', sql, principal),
    async checkGeneric(sql, principal = '') {
      const d = await cached('generic', sql, principal);
      if (d.ok && (d as { generic?: unknown }).generic === undefined) return unavailable as never;
      return d as GenericDecision;
    },
    async close() {
      closed = true;
      for (const queue of queues.values()) for (const job of queue) settle(job, unavailable);
      queues.clear();
      await Promise.all(
        checkers.map(async (c) => {
          const proc = c.child;
          if (!proc || proc.exitCode !== null) return;
          const exited = new Promise<void>((r) => proc.once('exit', () => r()));
          proc.disconnect();
          await exited;
        }),
      );
    },
  };

  function settle(job: Job, d: SqlGuardDecision): void {
    clearTimeout(job.timer);
    job.resolve(d);
  }

  function enqueue(type: Job['type'], sql: string, principal: string): Promise<SqlGuardDecision> {
    if (closed) return Promise.resolve(unavailable);
    const waiting = queuedChars.get(principal) ?? 0;
    if (waiting + sql.length > MAX_QUEUED_SQL_PER_PRINCIPAL) return Promise.resolve(overQuota);
    queuedChars.set(principal, waiting + sql.length);
    return new Promise<SqlGuardDecision>((resolve) => {
      const job: Job = {
        type,
        sql,
        principal,
        resolve: (d) => {
          const left = (queuedChars.get(principal) ?? sql.length) - sql.length;
          if (left > 0) queuedChars.set(principal, left);
          else queuedChars.delete(principal);
          resolve(d);
        },
      };
      job.timer = setTimeout(() => {
        const queue = queues.get(principal);
        const i = queue?.indexOf(job) ?? -1;
        if (queue && i >= 0) {
          queue.splice(i, 1);
          if (queue.length === 0) queues.delete(principal);
          job.resolve(unavailable);
        }
      }, QUEUE_TIMEOUT_MS);
      job.timer.unref();
      const queue = queues.get(principal) ?? [];
      queue.push(job);
      queues.set(principal, queue);
      dispatch();
    });
  }

  /** Hands waiting jobs to idle checkers: round-robin over principals, one per principal. */
  function dispatch(): void {
    for (const checker of checkers) {
      if (checker.busy) continue;
      let job: Job | undefined;
      for (const [principal, queue] of queues) {
        if (running.has(principal)) continue;
        job = queue.shift();
        queues.delete(principal);
        // Served: the principal moves to the end of the round.
        if (queue.length > 0) queues.set(principal, queue);
        break;
      }
      if (!job) return;
      clearTimeout(job.timer);
      checker.busy = true;
      running.add(job.principal);
      const done = job;
      void run(checker, done).then((d) => {
        checker.busy = false;
        running.delete(done.principal);
        done.resolve(d);
        dispatch();
      });
    }
  }

  async function run(checker: Checker, job: Job): Promise<SqlGuardDecision> {
    if (closed) return unavailable;
    if (!checker.child || !checker.ready) checker.ready = start(checker);
    try {
      await checker.ready;
    } catch {
      return unavailable;
    }
    const proc = checker.child;
    if (!proc?.connected) return unavailable;
    const id = nextId++;
    const pending = checker.pending;
    return new Promise<SqlGuardDecision>((resolve) => {
      const timer = setTimeout(
        () => {
          pending.delete(id);
          // A checker that hangs (e.g. a corrupted parser spinning) is replaced: the next
          // statement starts a new process instead of reaching the dying one.
          if (checker.child === proc) {
            checker.child = undefined;
            checker.ready = undefined;
          }
          proc.kill('SIGKILL');
          resolve(unavailable);
        },
        // The generic form (postgres_explain) parses and checks the statement twice.
        job.type === 'generic' ? 2 * CHECK_TIMEOUT_MS : CHECK_TIMEOUT_MS,
      );
      timer.unref();
      pending.set(id, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
      proc.send({ type: job.type, id, sql: job.sql });
    });
  }
}
