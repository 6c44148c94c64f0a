/**
 * The demos' runner: every failure ends the process promptly with one line on stderr and a
 * non-zero exit code, after releasing what the demo started (embedded PostgreSQL, S3 store,
 * server processes), whatever state it was in.
 *
 * A demo registers each resource as soon as it exists (`defer(() => thing.stop())`); the runner
 * releases them in reverse order after the demo returns, throws or overruns its deadline, each
 * within {@link CLEANUP_STEP_MS}, then calls `process.exit` so that no stray handle (a socket, a
 * child process, a timer of a library) can keep the process alive.
 */

/** Time allowed for the whole demo before it is abandoned, in milliseconds. */
export const DEMO_DEADLINE_MS = 300_000;

/** Time allowed for each cleanup step (stopping PostgreSQL, closing a session), in milliseconds. */
export const CLEANUP_STEP_MS = 40_000;

/** Registers a cleanup step, run after the demo ends (last registered runs first). */
export type Defer = (cleanup: () => Promise<unknown>) => void;

/**
 * Runs `demo`, releases its resources and exits the process: code 0 on success (or the
 * `process.exitCode` the demo set, e.g. for a broken audit chain), 1 on any failure. On failure
 * exactly one line goes to stderr: `demo failed: <first line of the error>`; with env
 * `HMCP_DEBUG` set, the full message (e.g. the embedded server's last log lines) follows.
 *
 * Never returns.
 */
export async function runDemo(demo: (defer: Defer) => Promise<void>): Promise<never> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const defer: Defer = (cleanup) => {
    cleanups.push(cleanup);
  };
  let failure: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      demo(defer),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the demo did not finish within ${DEMO_DEADLINE_MS / 1000} s`)),
          DEMO_DEADLINE_MS,
        );
      }),
    ]);
  } catch (error) {
    failure = error;
  } finally {
    clearTimeout(timer);
  }
  for (const cleanup of cleanups.reverse()) {
    try {
      await withDeadline(cleanup(), CLEANUP_STEP_MS);
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) {
    const message = failure instanceof Error ? failure.message : String(failure);
    const [first = 'unknown error', ...rest] = message.trim().split('\n');
    const more = rest.some((line) => line.trim() !== '');
    if (process.env.HMCP_DEBUG) {
      process.stderr.write(`demo failed: ${message.trim()}\n`);
    } else {
      process.stderr.write(
        `demo failed: ${first}${more ? ' (set HMCP_DEBUG=1 for details)' : ''}\n`,
      );
    }
    process.exit(1);
  }
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`a cleanup step did not finish within ${ms / 1000} s`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}
