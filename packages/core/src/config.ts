import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { StartupError } from './errors.js';

/** A role name: lower-case identifier. */
export const roleNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'role names are lower-case identifiers');
/** A scope: `<connector>:<permission>`, e.g. `postgres:read`. */
export const scopeSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_.-]{0,63}$/, 'scopes look like connector:permission');
/** A tool name: `<connector>_<verb>_<noun>`. */
export const toolNameSchema = z.string().regex(/^[a-z][a-z0-9]*(_[a-z0-9]+)+$/, 'not a tool name');

/**
 * Where a credential comes from: an environment variable or a file (e.g. a container secret
 * at `/run/secrets/...`). The value is never part of the configuration itself.
 */
export const credentialSourceSchema = z.union([
  z.strictObject({
    env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'not an environment variable name'),
  }),
  z.strictObject({ file: z.string().min(1).max(4096) }),
]);
/** See {@link credentialSourceSchema}. */
export type CredentialSource = z.infer<typeof credentialSourceSchema>;

const rateLimitSchema = z.strictObject({
  /** Calls allowed per window. */
  points: z.int().min(1).max(1_000_000),
  /** Window length in seconds. */
  durationSeconds: z.int().min(1).max(86_400),
});

const toolSettingsSchema = z.strictObject({
  /** `required` (the default for write tools) asks the human through MCP elicitation. */
  approval: z.enum(['required', 'none']).optional(),
  rateLimit: rateLimitSchema.optional(),
});

/**
 * The configuration every server shares (the connector adds its own section under its name).
 * Unknown keys are errors at every level.
 */
export const coreConfigShape = {
  /** `read-only` (default): write tools do not exist. `read-write`: they exist when a write credential is configured. */
  mode: z.enum(['read-only', 'read-write']).default('read-only'),
  /** stdio identity; defaults to the OS user with `defaultRoles`. */
  identity: z
    .strictObject({
      principal: z.string().min(1).max(256).optional(),
      roles: z.array(roleNameSchema).max(32).optional(),
    })
    .prefault({}),
  /** Roles given to a stdio principal that has no configured roles. */
  defaultRoles: z.array(roleNameSchema).max(32).default(['reader']),
  /** Role → scopes. Merged over the connector's defaults (`reader`, `writer`). */
  roles: z.record(roleNameSchema, z.array(scopeSchema).max(64)).default({}),
  tools: z
    .strictObject({
      /** If set, only these tools can be enabled. */
      allow: z.array(toolNameSchema).max(256).optional(),
      /** Per-tool settings. */
      settings: z.record(toolNameSchema, toolSettingsSchema).default({}),
    })
    .prefault({}),
  /** Default rate limit per principal and tool. */
  rateLimit: rateLimitSchema.default({ points: 120, durationSeconds: 60 }),
  output: z
    .strictObject({
      /** Ceiling on rows returned per call (a call may ask for fewer). */
      maxRows: z.int().min(1).max(100_000).default(500),
      /** Ceiling on the serialized result size per call, in bytes. */
      maxBytes: z
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(256 * 1024),
      redaction: z
        .strictObject({
          /** PII detectors (e-mail, phone, card, IBAN, national ids). Secrets are always redacted. */
          pii: z.boolean().default(true),
          /** Extra key/column-name rules: exact names (case-insensitive) or `/regex/flags`. */
          keyRules: z.array(z.string().min(1).max(256)).max(256).default([]),
        })
        .prefault({}),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /** JSON Lines audit records on stderr. */
      stderr: z.boolean().default(true),
      /** Append-only audit file (created with mode 0600), hash-chained across restarts. */
      file: z.string().min(1).max(4096).optional(),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  /** Credential sources per scope; defaults come from the connector (e.g. `POSTGRES_URL`). */
  credentials: z
    .strictObject({
      read: credentialSourceSchema.optional(),
      write: credentialSourceSchema.optional(),
    })
    .prefault({}),
};

/** The core's part of a parsed configuration. */
export type CoreConfig = z.infer<z.ZodObject<typeof coreConfigShape>>;

/**
 * Builds the full configuration schema of a connector: the core keys plus the connector's own
 * section under `key` (e.g. `postgres`). Strict at the top level too.
 */
export function defineConfigSchema<K extends string, S extends z.ZodType>(key: K, section: S) {
  return z.strictObject({ ...coreConfigShape, [key]: section } as typeof coreConfigShape & {
    [P in K]: S;
  });
}

/**
 * Reads a YAML or JSON configuration file (`.json` → JSON, anything else → YAML 1.2).
 *
 * @throws StartupError when the file cannot be read or parsed (message names the file, not its content).
 */
export async function readConfigFile(path: string): Promise<unknown> {
  const isJson = extname(path).toLowerCase() === '.json';
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StartupError(`cannot read config file ${path} (${code})`);
  }
  try {
    return isJson ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const where = err instanceof Error && 'linePos' in err ? ' (YAML syntax error)' : '';
    throw new StartupError(`config file ${path} is not valid ${isJson ? 'JSON' : 'YAML'}${where}`);
  }
}

/**
 * Parses configuration once with zod and deep-freezes the result.
 *
 * @throws StartupError listing every problem as `path: message`, one per issue, joined by `; `.
 */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown): Readonly<z.infer<S>> {
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        return `${path}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
      }
      return `${path}: ${issue.message}`;
    });
    throw new StartupError(`invalid configuration: ${problems.join('; ')}`);
  }
  return deepFreeze(result.data);
}

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  if (value !== null && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child, seen);
  }
  return value;
}
