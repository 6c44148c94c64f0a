/**
 * Throwaway databases with least-privilege roles, on a {@link TestPostgres} server: Chinook
 * ({@link createChinookDatabase}) and any other data set loaded through
 * {@link createLeastPrivilegeDatabase} (e.g. the generated sample in `sample-database.ts`).
 *
 * Every database gets its own uniquely named roles (roles are cluster-wide, so parallel suites
 * never collide). `PUBLIC` loses all privileges on the database (no CONNECT, no TEMP) and on
 * schema `public` (no USAGE/CREATE); each role is granted exactly what it needs.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Client, escapeIdentifier as ident, escapeLiteral as literal } from 'pg';
import { readChinookSql } from './paths.js';
import { errorMessage, type TestPostgres } from './postgres-server.js';

/** Maximum concurrent connections of each role created by this module (`CONNECTION LIMIT`). */
export const ROLE_CONNECTION_LIMIT = 32;

/** A test database (Chinook or another data set) with its two least-privilege roles. */
export interface TestDatabase {
  /** Database name, e.g. `hmcp_chinook_3f9a0c1b2d4e` (or the `name` option). */
  readonly database: string;
  /** Superuser URL to this database (the server's admin credentials). */
  readonly adminUrl: string;
  /**
   * URL of the read role: LOGIN with a random password, NOSUPERUSER, NOBYPASSRLS, NOCREATEDB,
   * NOCREATEROLE, NOREPLICATION, no CREATE or TEMP anywhere, CONNECT on this database, USAGE on
   * schema `public`, SELECT on every table of `public` (including `big_events`), role setting
   * `default_transaction_read_only = on`, `CONNECTION LIMIT` {@link ROLE_CONNECTION_LIMIT}.
   */
  readonly readUrl: string;
  /**
   * URL of the write role: like the read role but with SELECT, INSERT, UPDATE, DELETE on every
   * table of `public` and without the read-only default. No TRUNCATE, no DDL, not a superuser.
   */
  readonly writeUrl: string;
  /** Name of the read role, `hmcp_r_<16 hex>`. */
  readonly readRole: string;
  /** Name of the write role, `hmcp_r_<16 hex>`. */
  readonly writeRole: string;
  /**
   * Drops the database (terminating its sessions, `WITH (FORCE)`, PostgreSQL 13+), the two roles
   * and any role made for it with {@link createRole}. Idempotent; rejects on server errors.
   */
  drop(): Promise<void>;
}

/** A Chinook database with its two least-privilege roles (see {@link TestDatabase}). */
export type ChinookDatabase = TestDatabase;

/** Options of {@link createChinookDatabase}. */
export interface CreateChinookOptions {
  /**
   * Database name; default `hmcp_chinook_<12 hex>`. Must match `^[a-z_][a-z0-9_]{0,62}$`.
   * The database must not exist yet.
   */
  name?: string;
  /**
   * When set, also creates `public.big_events(id bigint primary key, customer_email text,
   * payload text, created_at timestamptz)` holding this many rows (ids 1..n, emails
   * `user<n>@example.com`, ~100-byte payloads, one-second spaced timestamps from
   * 2024-01-01T00:00:00Z), readable by the read role. A non-negative safe integer; several
   * million rows take seconds to tens of seconds depending on the server.
   */
  bigTableRows?: number;
}

/** A role made by {@link createRole}. */
export interface TestRole {
  /** Role name, `hmcp_r_<16 hex>`. */
  readonly role: string;
  /** Login URL of the role to the Chinook database. */
  readonly url: string;
  /** Drops the role (revoking its privileges first). Idempotent. */
  drop(): Promise<void>;
}

/** Options of {@link createRole}: the extra powers the new role has beyond a plain reader. */
export interface CreateRoleOptions {
  /** Make the role a SUPERUSER. */
  superuser?: boolean;
  /** Give the role BYPASSRLS. */
  bypassrls?: boolean;
  /**
   * Grant INSERT, UPDATE, DELETE on this table: `table` (in schema `public`) or `schema.table`.
   */
  grantWriteOn?: string;
  /** Make the role a member (with INHERIT) of these existing roles, e.g. `pg_read_server_files`. */
  memberOf?: string[];
}

const NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** Extra roles made by {@link createRole}, dropped along with their database. */
const extraRoles = new WeakMap<TestDatabase, Set<string>>();

/** Options of {@link createLeastPrivilegeDatabase}. */
export interface LeastPrivilegeDatabaseOptions {
  /** Database name. Must match `^[a-z_][a-z0-9_]{0,62}$`; the database must not exist yet. */
  readonly name: string;
  /** What is loaded, for error messages, e.g. `'Chinook'` or `'sample'`. */
  readonly label: string;
  /**
   * Loads schema and data into the fresh database, connected as the server's superuser (before
   * any role exists). `adminUrl` is the superuser URL of this database, for extra connections.
   * Tables must be created in schema `public`; the roles are granted on all of them afterwards.
   */
  readonly load: (client: Client, adminUrl: string) => Promise<void>;
}

/**
 * Creates a fresh database, loads chinook.sql (one multi-statement simple query via pg), creates
 * the two roles with unique names, returns URLs.
 *
 * The database is created from `template0` with encoding UTF8 and the `C` collation (identical
 * sort order on every server). After loading, `ANALYZE` runs on the whole database.
 *
 * @param server a server from `startTestPostgres()`.
 * @throws Error when chinook.sql is missing (see `readChinookSql`), when the options are invalid,
 *   or when any statement fails; whatever was created (database, roles) is dropped first.
 */
export async function createChinookDatabase(
  server: TestPostgres,
  opts: CreateChinookOptions = {},
): Promise<ChinookDatabase> {
  const { bigTableRows } = opts;
  if (bigTableRows !== undefined && (!Number.isSafeInteger(bigTableRows) || bigTableRows < 0)) {
    throw new Error(`bigTableRows must be a non-negative integer, got ${bigTableRows}.`);
  }
  const database = opts.name ?? `hmcp_chinook_${randomBytes(6).toString('hex')}`;
  if (!NAME_PATTERN.test(database)) {
    throw new Error(`Database name ${JSON.stringify(database)} must match ${NAME_PATTERN}.`);
  }
  const sql = await readChinookSql();
  return createLeastPrivilegeDatabase(server, {
    name: database,
    label: 'Chinook',
    load: async (client, adminUrl) => {
      // No parameters → simple query protocol, which accepts many statements at once.
      await client.query(sql);
      if (bigTableRows !== undefined) await createBigEvents(client, adminUrl, bigTableRows);
    },
  });
}

/**
 * Creates a fresh database, runs `opts.load` in it as the superuser, then creates the read and
 * write roles with unique names (see {@link TestDatabase} for their exact privileges), revokes
 * everything from `PUBLIC` and runs `ANALYZE`. The database is created from `template0` with
 * encoding UTF8 and the `C` collation (identical sort order on every server).
 *
 * This is the one place that makes the least-privilege roles; every data set goes through it.
 *
 * @param server a server from `startTestPostgres()`.
 * @throws Error when the name is invalid, the database exists, `opts.load` rejects or any
 *   statement fails; whatever was created (database, roles) is dropped first.
 */
export async function createLeastPrivilegeDatabase(
  server: TestPostgres,
  opts: LeastPrivilegeDatabaseOptions,
): Promise<TestDatabase> {
  const database = opts.name;
  if (!NAME_PATTERN.test(database)) {
    throw new Error(`Database name ${JSON.stringify(database)} must match ${NAME_PATTERN}.`);
  }
  const readRole = newRoleName();
  const writeRole = newRoleName();
  const readPassword = newPassword();
  const writePassword = newPassword();
  const dbAdminUrl = withDatabase(server.adminUrl, database);

  const dropAll = async (): Promise<void> => {
    await withClient(server.adminUrl, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
      const roles = [readRole, writeRole, ...(extraRoles.get(db) ?? [])];
      for (const role of roles) await client.query(`DROP ROLE IF EXISTS ${ident(role)}`);
    });
  };

  let dropping: Promise<void> | undefined;
  const db: TestDatabase = {
    database,
    adminUrl: dbAdminUrl,
    readUrl: roleUrl(server.adminUrl, readRole, readPassword, database),
    writeUrl: roleUrl(server.adminUrl, writeRole, writePassword, database),
    readRole,
    writeRole,
    drop: () => {
      dropping ??= dropAll().catch((error: unknown) => {
        dropping = undefined; // allow a retry
        throw error;
      });
      return dropping;
    },
  };

  try {
    await withClient(server.adminUrl, (client) =>
      client.query(
        `CREATE DATABASE ${ident(database)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`,
      ),
    );
  } catch (cause) {
    throw new Error(`Failed to create the database ${database}: ${errorMessage(cause)}`, { cause });
  }
  try {
    await withClient(dbAdminUrl, async (client) => {
      await opts.load(client, dbAdminUrl);

      const dbIdent = ident(database);
      await client.query(
        `REVOKE ALL ON DATABASE ${dbIdent} FROM PUBLIC; REVOKE ALL ON SCHEMA public FROM PUBLIC`,
      );
      await client.query(
        [
          createRoleSql(readRole, readPassword, { superuser: false, bypassrls: false }),
          `ALTER ROLE ${ident(readRole)} SET default_transaction_read_only = on`,
          `GRANT CONNECT ON DATABASE ${dbIdent} TO ${ident(readRole)}`,
          `GRANT USAGE ON SCHEMA public TO ${ident(readRole)}`,
          `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ident(readRole)}`,
          createRoleSql(writeRole, writePassword, { superuser: false, bypassrls: false }),
          `GRANT CONNECT ON DATABASE ${dbIdent} TO ${ident(writeRole)}`,
          `GRANT USAGE ON SCHEMA public TO ${ident(writeRole)}`,
          `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${ident(writeRole)}`,
          'ANALYZE',
        ].join(';\n'),
      );
    });
  } catch (cause) {
    await dropAll().catch(() => {});
    throw new Error(
      `Failed to create the ${opts.label} database ${database}: ${errorMessage(cause)}`,
      { cause },
    );
  }
  return db;
}

/**
 * Creates an extra login role on a Chinook database, typically one the MCP server must refuse
 * at startup. Besides the requested powers it looks like the read role: CONNECT on the database,
 * USAGE on schema `public`, SELECT on all its tables, `default_transaction_read_only = on`,
 * NOCREATEDB, NOCREATEROLE, NOREPLICATION, `CONNECTION LIMIT` {@link ROLE_CONNECTION_LIMIT},
 * random password. The role is also dropped by `db.drop()`.
 *
 * @throws Error (after removing the half-made role) when a statement fails, e.g. an unknown
 *   table in `grantWriteOn` or an unknown role in `memberOf`.
 */
export async function createRole(
  db: TestDatabase,
  opts: CreateRoleOptions = {},
): Promise<TestRole> {
  const role = newRoleName();
  const password = newPassword();
  const statements = [
    createRoleSql(role, password, {
      superuser: opts.superuser === true,
      bypassrls: opts.bypassrls === true,
    }),
    `ALTER ROLE ${ident(role)} SET default_transaction_read_only = on`,
    `GRANT CONNECT ON DATABASE ${ident(db.database)} TO ${ident(role)}`,
    `GRANT USAGE ON SCHEMA public TO ${ident(role)}`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${ident(role)}`,
  ];
  if (opts.grantWriteOn !== undefined) {
    statements.push(
      `GRANT INSERT, UPDATE, DELETE ON TABLE ${qualifiedTable(opts.grantWriteOn)} TO ${ident(role)}`,
    );
  }
  for (const member of opts.memberOf ?? []) {
    statements.push(`GRANT ${ident(member)} TO ${ident(role)}`);
  }

  const roles = extraRoles.get(db) ?? new Set<string>();
  extraRoles.set(db, roles);
  const adminUrl = withDatabase(db.adminUrl, 'postgres');
  const dropRole = async (): Promise<void> => {
    try {
      await withClient(db.adminUrl, (client) => client.query(`DROP OWNED BY ${ident(role)}`));
    } catch (error) {
      // 3D000: the database is already gone; 42704: the role is already gone.
      const code = (error as { code?: unknown }).code;
      if (code !== '3D000' && code !== '42704') throw error;
    }
    await withClient(adminUrl, (client) => client.query(`DROP ROLE IF EXISTS ${ident(role)}`));
    roles.delete(role);
  };

  roles.add(role);
  try {
    // One transaction: a failed grant leaves no role behind.
    await withClient(db.adminUrl, (client) =>
      client.query(['BEGIN', ...statements, 'COMMIT'].join(';\n')),
    );
  } catch (cause) {
    roles.delete(role);
    throw new Error(`Failed to create test role ${role}: ${errorMessage(cause)}`, { cause });
  }
  return { role, url: roleUrl(db.adminUrl, role, password, db.database), drop: dropRole };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Rows per loader connection below which `big_events` is filled by a single statement. */
const BIG_EVENTS_ROWS_PER_WORKER = 250_000;

/**
 * Creates and fills `public.big_events`. Rows are generated server-side (`generate_series`); above
 * {@link BIG_EVENTS_ROWS_PER_WORKER} rows the id range is split over up to 4 parallel
 * connections (bounded by the CPU count). The primary key is added after loading so the index
 * is built once instead of row by row.
 */
async function createBigEvents(client: Client, adminUrl: string, rows: number): Promise<void> {
  await client.query(
    'CREATE TABLE public.big_events (id bigint NOT NULL, customer_email text, payload text, created_at timestamptz)',
  );
  const workers = Math.max(
    1,
    Math.min(4, availableParallelism(), Math.floor(rows / BIG_EVENTS_ROWS_PER_WORKER)),
  );
  const fill = (from: number, to: number): string =>
    `INSERT INTO public.big_events (id, customer_email, payload, created_at)
     SELECT g,
            'user' || g || '@example.com',
            rpad('event ' || g || ' ', 100, ' lorem ipsum dolor sit amet consectetur adipiscing elit'),
            timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
     FROM generate_series(${from}::bigint, ${to}::bigint) AS g`;
  if (workers === 1) {
    await client.query(fill(1, rows));
  } else {
    const chunk = Math.ceil(rows / workers);
    await Promise.all(
      Array.from({ length: workers }, (_, i) => {
        const from = i * chunk + 1;
        const to = Math.min(rows, (i + 1) * chunk);
        return from > to ? Promise.resolve() : withClient(adminUrl, (c) => c.query(fill(from, to)));
      }),
    );
  }
  await client.query(
    [
      "SET maintenance_work_mem = '256MB'",
      'ALTER TABLE public.big_events ADD CONSTRAINT big_events_pkey PRIMARY KEY (id)',
      'RESET maintenance_work_mem',
    ].join(';\n'),
  );
}

function createRoleSql(
  role: string,
  password: string,
  powers: { superuser: boolean; bypassrls: boolean },
): string {
  return (
    `CREATE ROLE ${ident(role)} LOGIN PASSWORD ${literal(password)} ` +
    `${powers.superuser ? 'SUPERUSER' : 'NOSUPERUSER'} ${powers.bypassrls ? 'BYPASSRLS' : 'NOBYPASSRLS'} ` +
    `NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT ${ROLE_CONNECTION_LIMIT}`
  );
}

function qualifiedTable(name: string): string {
  const parts = name.split('.');
  if (parts.length === 1) return `public.${ident(name)}`;
  if (parts.length === 2 && parts[0] && parts[1]) return `${ident(parts[0])}.${ident(parts[1])}`;
  throw new Error(`grantWriteOn must be "table" or "schema.table", got ${JSON.stringify(name)}.`);
}

/** `hmcp_r_` + 16 random hex digits. */
function newRoleName(): string {
  return `hmcp_r_${randomBytes(8).toString('hex')}`;
}

/** 32 random URL-safe characters (192 bits). */
function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function roleUrl(serverUrl: string, role: string, password: string, database: string): string {
  const parsed = new URL(withDatabase(serverUrl, database));
  parsed.username = role;
  parsed.password = password;
  return parsed.toString();
}

async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
