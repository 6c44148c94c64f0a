import { type Logger, pino } from 'pino';
import type { Redactor } from './redaction/index.js';

export type { Logger } from 'pino';

/**
 * The server log: pino JSON lines on stderr (fd 2), never stdout (on stdio, stdout is the MCP
 * protocol). Every log object passes through the redactor, so a secret or PII value that reaches
 * a log call is masked like it would be in a tool result.
 *
 * @param level - pino level name
 * @param redactor - the process's redactor (knows the loaded credentials by value)
 * @param destination - for tests; defaults to stderr, written synchronously
 */
export function createLogger(
  level: string,
  redactor: Redactor,
  destination: NodeJS.WritableStream | ReturnType<typeof pino.destination> = pino.destination({
    fd: 2,
    sync: true,
  }),
): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        log(object) {
          // Errors first become plain objects (their message/stack are not enumerable), then everything is redacted.
          const plain =
            object.err instanceof Error ? { ...object, err: serializeError(object.err) } : object;
          return redactor.redactValue(plain, {}) as Record<string, unknown>;
        },
      },
      // `err` is serialized (and redacted) in formatters.log above; pino's default serializer would re-wrap it.
      serializers: { err: (err: unknown) => err },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((a) =>
            typeof a === 'string' ? redactor.redactString(a).value : a,
          );
          return method.apply(this, redacted as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

/** A plain, loggable form of an error: type, message, code, stack and one level of cause. */
function serializeError(err: Error): Record<string, unknown> {
  const cause =
    err.cause instanceof Error
      ? {
          type: err.cause.name,
          message: err.cause.message,
          code: (err.cause as { code?: unknown }).code,
        }
      : undefined;
  return {
    type: err.name,
    message: err.message,
    code: (err as { code?: unknown }).code,
    stack: err.stack,
    cause,
  };
}
