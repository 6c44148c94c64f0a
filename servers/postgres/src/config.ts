import { z } from 'zod';

/** A PostgreSQL identifier as configured (1–63 bytes, NAMEDATALEN − 1; PostgreSQL docs §4.1.1). */
const identifier = z.string().min(1).max(63);
/** `schema.table` or a bare `table` (meaning: in any allowed schema). */
const tableRef = z.string().min(1).max(127);

/** A typed parameter of a saved query. Values are bound as `$1…$n`, never interpolated. */
export const savedQueryParamSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'parameter names are lower-case identifiers'),
  type: z.enum(['string', 'integer', 'number', 'boolean']),
  description: z.string().max(500).optional(),
  required: z.boolean().default(true),
  /** integer/number: inclusive bounds. */
  min: z.number().optional(),
  max: z.number().optional(),
  /** string: maximum length in characters (default 1000). */
  maxLength: z.int().min(1).max(100_000).default(1000),
  /** string: a regular expression the whole value must match. */
  pattern: z.string().max(500).optional(),
  /** string: the allowed values. */
  enum: z.array(z.string().max(1000)).min(1).max(1000).optional(),
});
/** See {@link savedQueryParamSchema}. */
export type SavedQueryParam = z.infer<typeof savedQueryParamSchema>;

/** An operator-defined named query. `read` queries must pass the same SQL walls as `postgres_query`. */
export const savedQuerySchema = z.strictObject({
  description: z.string().min(1).max(1000),
  sql: z.string().min(1).max(100_000),
  access: z.enum(['read', 'write']).default('read'),
  params: z.array(savedQueryParamSchema).max(32).default([]),
});
/** See {@link savedQuerySchema}. */
export type SavedQuery = z.infer<typeof savedQuerySchema>;

/** The database roles of one mapping rule (or of the default). */
const databaseRolePairSchema = z.strictObject({
  /** The role `SET LOCAL ROLE` switches to for read tools (a role the login role is a member of). */
  read: identifier,
  /** The role for write tools; without it this principal's write calls are refused. */
  write: identifier.optional(),
});

/**
 * One rule of `postgres.databaseRoles.rules`: who it matches (exactly one of a principal id or
 * one of the principal's roles) and the database roles that principal runs as.
 */
export const databaseRoleRuleSchema = databaseRolePairSchema
  .extend({
    /** Matches this exact principal id (stdio: `identity.principal`; HTTP: the token `sub`). */
    principal: z.string().min(1).max(256).optional(),
    /** Matches a principal holding this role (the core's role names, e.g. from `auth.oauth.scopeRoles`). */
    identityRole: z.string().min(1).max(64).optional(),
  })
  .refine((r) => (r.principal === undefined) !== (r.identityRole === undefined), {
    message: 'a rule matches exactly one of principal or identityRole',
  });
/** See {@link databaseRoleRuleSchema}. */
export type DatabaseRoleRule = z.infer<typeof databaseRoleRuleSchema>;

/**
 * `postgres.databaseRoles`: per-principal database roles. When present, every call runs
 * `SET LOCAL ROLE` to the role of the first matching rule (in order), with
 * `hardened_mcp.principal` and `hardened_mcp.claims` set for the transaction; a principal no rule
 * matches is refused unless `default` is set. Never runs a call as the login role itself.
 */
export const databaseRolesSchema = z.strictObject({
  rules: z.array(databaseRoleRuleSchema).min(1).max(1_000),
  /** Roles for principals no rule matches; absent: such principals are refused. */
  default: databaseRolePairSchema.optional(),
});
/** See {@link databaseRolesSchema}. */
export type DatabaseRolesSettings = z.infer<typeof databaseRolesSchema>;

/** The `postgres:` section of the configuration file. Every key has a safe default. */
export const postgresSectionSchema = z
  .strictObject({
    /** Schemas the tools may see and query. */
    schemas: z.array(identifier).min(1).max(64).default(['public']),
    tables: z
      .strictObject({
        /** If set, only these tables (`schema.table` or bare names) are visible. */
        allow: z.array(tableRef).max(10_000).optional(),
        /** Never visible, even in an allowed schema. */
        deny: z.array(tableRef).max(10_000).default([]),
        /** If set, write tools may only touch these tables. */
        writable: z.array(tableRef).max(10_000).optional(),
      })
      .prefault({}),
    /** `SET LOCAL statement_timeout` for every statement, in ms. */
    statementTimeoutMs: z.int().min(100).max(3_600_000).default(5_000),
    /** `SET LOCAL lock_timeout`, in ms. */
    lockTimeoutMs: z.int().min(10).max(600_000).default(1_000),
    /** `SET LOCAL idle_in_transaction_session_timeout`, in ms. */
    idleInTransactionTimeoutMs: z.int().min(1_000).max(3_600_000).default(30_000),
    /** A write affecting more rows than this is rolled back. */
    maxAffectedRows: z.int().min(1).max(1_000_000).default(100),
    /**
     * Largest single message (e.g. one result row) accepted from the server, in bytes. A larger
     * one (a 40 MB `string_agg` in one row) closes the connection before it is buffered.
     */
    maxMessageBytes: z
      .int()
      .min(64 * 1024)
      .max(512 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    /** Rows fetched per cursor round trip. */
    fetchRows: z.int().min(1).max(10_000).default(200),
    pool: z
      .strictObject({
        max: z.int().min(1).max(100).default(4),
        idleTimeoutMs: z.int().min(1_000).max(3_600_000).default(30_000),
        connectionTimeoutMs: z.int().min(100).max(120_000).default(5_000),
      })
      .prefault({}),
    /** Extra functions allowed in queries (lower-case, optionally schema-qualified). */
    functions: z
      .strictObject({ allow: z.array(z.string().min(1).max(127)).max(1_000).default([]) })
      .prefault({}),
    /** Start even when the read credential's role is privileged (warns loudly). Same as `--allow-privileged-role`. */
    allowPrivilegedRole: z.boolean().default(false),
    /** Per-principal database roles (see {@link databaseRolesSchema}); absent: calls run as the login role. */
    databaseRoles: databaseRolesSchema.optional(),
    /** Named queries the operator vouches for. */
    savedQueries: z
      .record(
        z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'saved query names are lower-case identifiers'),
        savedQuerySchema,
      )
      .default({}),
  })
  .prefault({});

/** The parsed `postgres:` section. */
export type PostgresSettings = z.infer<typeof postgresSectionSchema>;
