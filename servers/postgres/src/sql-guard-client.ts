import { type ChildProcess, fork } from 'node:child_process';
import type { SqlGuardDecision, SqlGuardPolicy } from './sql-guard.js';

/** The SQL guard, answered by its own process (see sql-guard-process.ts). */
export interface SqlGuardClient {
  /** The guard's verdict for one statement. Fails closed: a missing or slow checker denies. */
  check(sql: string): Promise<SqlGuardDecision>;
  close(): Promise<void>;
}

/** Verdicts kept (least recently used dropped first), and the longest SQL text cached (characters). */
const CACHE_ENTRIES = 512;
const CACHE_MAX_SQL = 16_384;

/** How long one check may take before it is refused (ms). */
const CHECK_TIMEOUT_MS = 5_000;

const unavailable: SqlGuardDecision = {
  ok: false,
  code: 'sql_parse_error',
  message: 'the SQL checker is unavailable; try again',
};

/**
 * Forks the guard process (`node sql-guard-process.js` with an IPC channel; stdin/stdout closed,
 * stderr shared) and waits until its parser is loaded. A checker that exits is restarted on the
 * next check; checks in flight when it died, or that time out, are refused.
 *
 * @throws Error when the first start fails.
 */
export async function createSqlGuardClient(policy: SqlGuardPolicy): Promise<SqlGuardClient> {
  const script = new URL('./sql-guard-process.js', import.meta.url);
  let child: ChildProcess | undefined;
  let ready: Promise<void> | undefined;
  let nextId = 1;
  let closed = false;
  const pending = new Map<number, (d: SqlGuardDecision) => void>();

  const start = (): Promise<void> => {
    // --liftoff-only: V8's optimizing compiler spends hundreds of MB on the parser's huge WASM
    // functions (the grammar); the baseline compiler parses as fast for statements this size.
    const proc = fork(script, [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
      execArgv: ['--liftoff-only'],
    });
    child = proc;
    proc.on('message', (m: { type: string; id?: number; decision?: SqlGuardDecision }) => {
      if (m.type === 'result' && m.id !== undefined) {
        const resolve = pending.get(m.id);
        pending.delete(m.id);
        resolve?.(m.decision ?? unavailable);
      }
    });
    proc.once('exit', () => {
      if (child === proc) {
        child = undefined;
        ready = undefined;
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
  ready = start();
  await ready;

  // Agents repeat statements; verdicts depend only on the text and the fixed policy.
  const cache = new Map<string, SqlGuardDecision>();
  const remember = (sql: string, d: SqlGuardDecision) => {
    if (d === unavailable || sql.length > CACHE_MAX_SQL) return d;
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(sql, d);
    return d;
  };
  return {
    async check(sql) {
      const hit = cache.get(sql);
      if (hit) {
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      return remember(sql, await ask(sql));
    },
    async close() {
      closed = true;
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.disconnect();
      await exited;
    },
  };

  async function ask(sql: string): Promise<SqlGuardDecision> {
    if (closed) return unavailable;
    if (!child || !ready) ready = start();
    try {
      await ready;
    } catch {
      return unavailable;
    }
    const proc = child;
    if (!proc?.connected) return unavailable;
    const id = nextId++;
    return new Promise<SqlGuardDecision>((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        // A checker that hangs (e.g. a corrupted parser spinning) is replaced.
        proc.kill('SIGKILL');
        resolve(unavailable);
      }, CHECK_TIMEOUT_MS);
      timer.unref();
      pending.set(id, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
      proc.send({ type: 'check', id, sql });
    });
  }
}
