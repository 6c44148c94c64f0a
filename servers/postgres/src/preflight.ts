import type { Logger } from '@hardened-mcp/core';
import type pg from 'pg';

/** What {@link inspectRole} found about the connected role. */
export interface RoleReport {
  readonly role: string;
  readonly serverVersion: string;
  /** Human-readable reasons the role is too privileged for a read credential; empty = least privilege. */
  readonly problems: readonly string[];
  /** Weaker findings worth a warning (e.g. CREATE on a schema). */
  readonly warnings: readonly string[];
}

/**
 * Predefined roles (PostgreSQL docs §22.5) a read credential must not hold: server files and
 * programs, all data, other sessions (signal, stats, activity), all settings, checkpoints,
 * subscriptions. Membership through a chain of roles counts (`pg_has_role … MEMBER`).
 */
const DANGEROUS_MEMBERSHIPS = [
  'pg_write_server_files',
  'pg_read_server_files',
  'pg_execute_server_program',
  'pg_write_all_data',
  'pg_read_all_data',
  'pg_signal_backend',
  'pg_read_all_settings',
  'pg_read_all_stats',
  'pg_stat_scan_tables',
  'pg_monitor',
  'pg_checkpoint',
  'pg_create_subscription',
  'pg_use_reserved_connections',
] as const;

/** Functions that reach server files or large objects; EXECUTE can be granted one by one. */
const DANGEROUS_FUNCTIONS = [
  'pg_read_file(text)',
  'pg_read_binary_file(text)',
  'pg_ls_dir(text)',
  'pg_stat_file(text)',
  'lo_import(text)',
  'lo_export(oid, text)',
] as const;

/**
 * Inspects the role a pool connects as: superuser, `BYPASSRLS`, `CREATEROLE`, `CREATEDB`,
 * `REPLICATION`, membership in the predefined roles of {@link DANGEROUS_MEMBERSHIPS}, EXECUTE on
 * server-file/large-object functions, and any INSERT/UPDATE/DELETE/TRUNCATE (table or column
 * level) on a relation it can see outside the system schemas.
 */
export async function inspectRole(pool: pg.Pool, roleName?: string): Promise<RoleReport> {
  const who =
    roleName ?? (await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0]?.u ?? '';
  const role = await pool.query<{
    rolname: string;
    rolsuper: boolean;
    rolbypassrls: boolean;
    rolcreaterole: boolean;
    rolcreatedb: boolean;
    rolreplication: boolean;
    version: string;
    memberships: string[] | null;
    functions: string[] | null;
  }>({
    text: `SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
              pg_catalog.current_setting('server_version') AS version,
              ARRAY(SELECT m FROM pg_catalog.unnest($1::text[]) AS m
                    WHERE pg_catalog.to_regrole(m) IS NOT NULL AND pg_catalog.pg_has_role($3::name, pg_catalog.to_regrole(m), 'MEMBER')) AS memberships,
              ARRAY(SELECT f FROM pg_catalog.unnest($2::text[]) AS f
                    WHERE pg_catalog.to_regprocedure(f) IS NOT NULL AND pg_catalog.has_function_privilege($3::name, pg_catalog.to_regprocedure(f), 'EXECUTE')) AS functions
         FROM pg_roles r WHERE r.rolname = $3::name`,
    values: [DANGEROUS_MEMBERSHIPS, DANGEROUS_FUNCTIONS, who],
  });
  const row = role.rows[0];
  if (!row) throw new Error(`role ${who} not found in pg_roles`);
  const problems: string[] = [];
  if (row.rolsuper) problems.push('is a superuser');
  if (row.rolbypassrls) problems.push('has BYPASSRLS');
  if (row.rolcreaterole) problems.push('has CREATEROLE');
  if (row.rolcreatedb) problems.push('has CREATEDB');
  if (row.rolreplication) problems.push('has REPLICATION');
  for (const m of row.memberships ?? []) problems.push(`is a member of ${m}`);
  if (!row.rolsuper)
    for (const f of row.functions ?? []) problems.push(`can execute ${f.split('(')[0]}`);
  if (!row.rolsuper) {
    const writable = await pool.query<{ name: string }>(
      `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%'::text AND n.nspname NOT LIKE 'pg\\_temp%'::text
          AND pg_catalog.has_schema_privilege($1::name, n.oid, 'USAGE')
          AND (pg_catalog.has_table_privilege($1::name, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
               OR pg_catalog.has_any_column_privilege($1::name, c.oid, 'INSERT, UPDATE'))
        ORDER BY 1 LIMIT 6`,
      [who],
    );
    if (writable.rows.length > 0) {
      const names = writable.rows.slice(0, 5).map((r) => r.name);
      problems.push(
        `can write to ${names.join(', ')}${writable.rows.length > 5 ? ' and more' : ''}`,
      );
    }
  }
  const warnings: string[] = [];
  const creatable = await pool.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace
      WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'::text
        AND pg_catalog.has_schema_privilege($1::name, oid, 'CREATE') ORDER BY 1 LIMIT 5`,
    [who],
  );
  if (creatable.rows.length > 0)
    warnings.push(`can CREATE in schema ${creatable.rows.map((r) => r.nspname).join(', ')}`);
  return { role: row.rolname, serverVersion: row.version, problems, warnings };
}

/**
 * The startup check of `postgres.databaseRoles` (the shape the issue asks for: the login role
 * is a member of the mapped roles and holds nothing itself):
 *
 * - the login role must be able to switch to every mapped role: each is tried with
 *   `pg_catalog.set_config('role', r, true)` in a transaction that is rolled back (this is the check
 *   PostgreSQL itself makes: membership, and the SET option on PostgreSQL 16+);
 * - the login role must hold no privilege on any relation outside the system schemas, not even
 *   SELECT (no inherited privileges: `NOINHERIT`, or `GRANT r TO login WITH INHERIT FALSE` on
 *   16+), so that nothing can be read without a mapped role;
 * - each mapped role gets {@link inspectRole}'s checks (superuser, BYPASSRLS — which would
 *   switch row-level security off —, dangerous memberships, writes for read roles).
 *
 * @returns problems, each naming its role; the caller refuses to start on any (or warns with
 *   `--allow-privileged-role`).
 * @throws Error naming the roles the login role cannot switch to (never overridable).
 */
export async function inspectMappedRoles(
  pool: pg.Pool,
  roles: readonly string[],
  scope: 'read' | 'write',
): Promise<{ readonly problems: readonly string[]; readonly warnings: readonly string[] }> {
  const unusable: string[] = [];
  const client = await pool.connect();
  try {
    for (const role of roles) {
      try {
        await client.query('BEGIN READ ONLY');
        await client.query("SELECT pg_catalog.set_config('role', $1, true)", [role]);
      } catch {
        unusable.push(role);
      } finally {
        await client.query('ROLLBACK');
      }
    }
  } finally {
    client.release();
  }
  if (unusable.length > 0)
    throw new Error(
      `the login role cannot SET ROLE to ${unusable.join(', ')} (the role must exist and the login role must be a member of it)`,
    );
  const problems: string[] = [];
  const warnings: string[] = [];
  const readable = await pool.query<{ name: string }>(
    `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%'::text AND n.nspname NOT LIKE 'pg\\_temp%'::text
        AND (pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
             OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE'))
      ORDER BY 1 LIMIT 6`,
  );
  if (readable.rows.length > 0) {
    const names = readable.rows.slice(0, 5).map((r) => r.name);
    problems.push(
      `holds privileges itself on ${names.join(', ')}${readable.rows.length > 5 ? ' and more' : ''} (with postgres.databaseRoles the login role must hold nothing: NOINHERIT, or GRANT … WITH INHERIT FALSE)`,
    );
  }
  for (const role of roles) {
    const report = await inspectRole(pool, role);
    const own =
      scope === 'read'
        ? report.problems
        : report.problems.filter((p) => !p.startsWith('can write'));
    for (const p of own) problems.push(`maps principals to role ${role}, which ${p}`);
    for (const w of report.warnings) warnings.push(`mapped role ${role} ${w}`);
  }
  return { problems, warnings };
}

/** Logs the report loudly when privileged roles are explicitly allowed. */
export function warnPrivileged(logger: Logger, report: RoleReport, what: string): void {
  logger.warn(
    { role: report.role, problems: report.problems },
    `DANGER: the ${what} role ${report.role} ${report.problems.join('; ')}. Started anyway because --allow-privileged-role is set; the SQL checks and READ ONLY transactions still apply, but the database is no longer the first wall.`,
  );
}

/**
 * Classified columns and tables (labels above `clearance`, the default clearance) that a
 * database role can SELECT: the database itself does not enforce what the classification
 * forbids, so only the server's column check stands in the way. Label paths are
 * `schema.table` or `schema.table.column`; paths that name no existing relation are skipped.
 * `role` is the role whose privileges are checked (a `postgres.databaseRoles` role, which the
 * calls run as); without it, the connected role. The privilege functions take the role as
 * their first argument (PostgreSQL docs §9.27, Access Privilege Inquiry Functions).
 *
 * @returns one `schema.table[.column] (label)` per finding, at most 20
 */
export async function classificationGrants(
  pool: pg.Pool,
  labels: Readonly<Record<string, string>>,
  above: (label: string) => boolean,
  role?: string,
): Promise<string[]> {
  const paths = Object.entries(labels)
    .filter(([, label]) => above(label))
    .map(([path, label]) => ({ parts: path.split('.'), path, label }))
    .filter((p) => p.parts.length === 2 || p.parts.length === 3);
  if (paths.length === 0) return [];
  const r = await pool.query<{ path: string }>({
    text: `SELECT p.path
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS p(path, s, t, c)
             JOIN pg_namespace n ON n.nspname = p.s
             JOIN pg_class cl ON cl.relnamespace = n.oid AND cl.relname = p.t
            CROSS JOIN (SELECT coalesce($5::name, current_user) AS r) AS who
            WHERE pg_catalog.has_schema_privilege(who.r, n.oid, 'USAGE')
              AND CASE WHEN p.c = '' THEN pg_catalog.has_table_privilege(who.r, cl.oid, 'SELECT')
                       ELSE EXISTS (SELECT 1 FROM pg_attribute a
                                     WHERE a.attrelid = cl.oid AND a.attname = p.c AND NOT a.attisdropped)
                            AND pg_catalog.has_column_privilege(who.r, cl.oid, p.c, 'SELECT') END
            ORDER BY 1 LIMIT 20`,
    values: [
      paths.map((p) => p.path),
      paths.map((p) => p.parts[0]),
      paths.map((p) => p.parts[1]),
      paths.map((p) => p.parts[2] ?? ''),
      role ?? null,
    ],
  });
  const labelOf = new Map(paths.map((p) => [p.path, p.label]));
  return r.rows.map((row) => `${row.path} (${labelOf.get(row.path)})`);
}
