/**
 * A snapshot of everything an attack on the Postgres server could change, read through the
 * admin (superuser) URL of the Chinook database. Two snapshots taken around a refused call must
 * be equal: same rows, same objects, same privileges and settings, no sequence movement, no
 * advisory locks, no large objects, no files, no notifications, no busy sessions left behind.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';

/** What {@link openStateProbe} watches. */
export interface StateProbeOptions {
  /** Superuser URL of the Chinook database. */
  readonly adminUrl: string;
  /** URL of the read role (a fresh session per snapshot shows the settings it starts with). */
  readonly readUrl: string;
  /** The server's read and write roles. */
  readonly roles: readonly string[];
  /** Channels the admin connection LISTENs on; any NOTIFY on them is recorded. */
  readonly channels: readonly string[];
  /** Server-side paths attacks try to create; each must not exist. */
  readonly files: readonly string[];
  /** Names of roles/databases/schemas attacks try to create; none may exist. */
  readonly forbiddenNames: readonly string[];
}

/** A comparable snapshot (plain JSON data). */
export interface DbState {
  readonly tables: Record<string, { rows: number; checksum: string }>;
  readonly objects: readonly string[];
  readonly roles: readonly unknown[];
  readonly roleSettings: readonly unknown[];
  readonly readSessionSettings: Record<string, string>;
  readonly database: unknown;
  readonly sequences: readonly unknown[];
  readonly attackSeq: { last_value: string; is_called: boolean } | undefined;
  readonly advisoryLocks: number;
  readonly locksHeldByServerRoles: number;
  readonly busyServerSessions: number;
  readonly preparedXacts: number;
  readonly largeObjects: number;
  readonly autoConf: readonly unknown[];
  readonly existingFiles: readonly string[];
  readonly forbiddenNamesFound: readonly string[];
}

/** An open admin connection that takes snapshots and collects notifications. */
export interface StateProbe {
  snapshot(): Promise<DbState>;
  /** Notifications received so far (`channel:payload`). */
  readonly notifications: readonly string[];
  /** Runs a query as the admin (used by tests for setup and extra checks). */
  query<T extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** `application_name` of the probe's own read-role session, excluded from session counts. */
const PROBE_APP = 'hmcp-attack-state-probe';

/** Settings a fresh read-role session must start with unchanged. */
const SESSION_SETTINGS = [
  'default_transaction_read_only',
  'transaction_read_only',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'search_path',
  'work_mem',
  'role',
  'session_authorization',
  'session_preload_libraries',
  'local_preload_libraries',
  'log_statement',
  'temp_file_limit',
  'row_security',
];

const SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')";

/**
 * Connects as the admin, LISTENs on `opts.channels` and returns a probe.
 *
 * @throws when the database cannot be reached.
 */
export async function openStateProbe(opts: StateProbeOptions): Promise<StateProbe> {
  const admin = new pg.Client({ connectionString: opts.adminUrl });
  await admin.connect();
  const notifications: string[] = [];
  admin.on('notification', (n) => notifications.push(`${n.channel}:${n.payload ?? ''}`));
  for (const channel of opts.channels) await admin.query(`LISTEN ${pg.escapeIdentifier(channel)}`);

  const q = async <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
    (await admin.query<T>(sql, values)).rows;

  async function tableStats(): Promise<DbState['tables']> {
    const tables = await q<{ nsp: string; rel: string }>(
      `SELECT n.nspname AS nsp, c.relname AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ${SYSTEM_SCHEMAS} AND n.nspname NOT LIKE 'pg_temp%'
          AND n.nspname NOT LIKE 'pg_toast_temp%' ORDER BY 1, 2`,
    );
    if (tables.length === 0) return {};
    const parts = tables.map((t) => {
      const name = `${pg.escapeIdentifier(t.nsp)}.${pg.escapeIdentifier(t.rel)}`;
      // Order-independent content checksum (no sort): any changed, added or removed row moves it.
      return `SELECT ${pg.escapeLiteral(`${t.nsp}.${t.rel}`)} AS name, count(*)::int AS rows,
                     coalesce(sum(hashtext(x::text)::int8), 0)::text AS checksum FROM ${name} x`;
    });
    const rows = await q<{ name: string; rows: number; checksum: string }>(
      parts.join(' UNION ALL '),
    );
    return Object.fromEntries(rows.map((r) => [r.name, { rows: r.rows, checksum: r.checksum }]));
  }

  async function objects(): Promise<string[]> {
    const rows = await q<{ o: string }>(
      `SELECT 'namespace ' || n.nspname || ' owner=' || n.nspowner::regrole || ' acl=' || coalesce(n.nspacl::text, '-') AS o
         FROM pg_namespace n WHERE n.nspname NOT IN ${SYSTEM_SCHEMAS}
       UNION ALL
       SELECT 'class ' || c.relkind::text || ' ' || n.nspname || '.' || c.relname || ' owner=' || c.relowner::regrole
              || ' acl=' || coalesce(c.relacl::text, '-') || ' rls=' || c.relrowsecurity || ' persistence=' || c.relpersistence::text
              || ' cols=' || coalesce((SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || coalesce(a.attacl::text, '-'), ',' ORDER BY a.attnum)
                                         FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ${SYSTEM_SCHEMAS}
       UNION ALL
       SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') owner='
              || p.proowner::regrole || ' acl=' || coalesce(p.proacl::text, '-') || ' secdef=' || p.prosecdef
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ${SYSTEM_SCHEMAS}
       UNION ALL
       SELECT 'type ' || n.nspname || '.' || t.typname || ' acl=' || coalesce(t.typacl::text, '-')
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname NOT IN ${SYSTEM_SCHEMAS}
       UNION ALL
       SELECT 'rule ' || r.rulename || ' on ' || r.ev_class::regclass::text FROM pg_rewrite r WHERE r.oid >= 16384
       UNION ALL
       SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text FROM pg_trigger t WHERE NOT t.tgisinternal
       UNION ALL
       SELECT 'policy ' || p.polname || ' on ' || p.polrelid::regclass::text FROM pg_policy p
       UNION ALL
       SELECT 'constraint ' || c.conname || ' on ' || c.conrelid::regclass::text FROM pg_constraint c WHERE c.oid >= 16384
       UNION ALL
       SELECT 'extension ' || e.extname || ' ' || e.extversion FROM pg_extension e
       UNION ALL
       SELECT 'fdw ' || w.fdwname FROM pg_foreign_data_wrapper w
       UNION ALL
       SELECT 'server ' || s.srvname FROM pg_foreign_server s
       UNION ALL
       SELECT 'user mapping ' || m.umuser::text FROM pg_user_mapping m
       UNION ALL
       SELECT 'publication ' || p.pubname FROM pg_publication p
       UNION ALL
       SELECT 'event trigger ' || e.evtname FROM pg_event_trigger e
       UNION ALL
       SELECT 'cast ' || c.castsource::regtype || '->' || c.casttarget::regtype FROM pg_cast c WHERE c.oid >= 16384
       UNION ALL
       SELECT 'operator ' || o.oprname || ' ' || o.oprnamespace::regnamespace FROM pg_operator o WHERE o.oid >= 16384
       UNION ALL
       SELECT 'default acl ' || d.defaclrole::regrole || ' ' || coalesce(d.defaclacl::text, '-') FROM pg_default_acl d
       UNION ALL
       SELECT 'description ' || d.classoid::regclass || ' ' || d.objoid || ' ' || d.objsubid || ' ' || d.description
         FROM pg_description d WHERE d.objoid >= 16384
       UNION ALL
       SELECT 'seclabel ' || s.objoid || ' ' || s.provider || ' ' || s.label FROM pg_seclabel s
       UNION ALL
       SELECT 'statistics ' || s.stxname FROM pg_statistic_ext s`,
    );
    return rows.map((r) => r.o).sort();
  }

  async function readSessionSettings(): Promise<Record<string, string>> {
    const c = new pg.Client({ connectionString: opts.readUrl, application_name: PROBE_APP });
    await c.connect();
    try {
      const r = await c.query<{ name: string; setting: string }>(
        'SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name',
        [SESSION_SETTINGS],
      );
      return Object.fromEntries(r.rows.map((row) => [row.name, row.setting]));
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  async function snapshot(): Promise<DbState> {
    const roles = [...opts.roles];
    const tables = await tableStats();
    const objs = await objects();
    const roleRows = await q(
      `SELECT a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb, a.rolcanlogin,
              a.rolreplication, a.rolbypassrls, a.rolconnlimit, md5(coalesce(a.rolpassword, '')) AS password_md5,
              a.rolvaliduntil::text AS valid_until,
              ARRAY(SELECT m.roleid::regrole::text FROM pg_auth_members m WHERE m.member = a.oid ORDER BY 1) AS member_of,
              ARRAY(SELECT m.member::regrole::text FROM pg_auth_members m WHERE m.roleid = a.oid ORDER BY 1) AS members
         FROM pg_authid a WHERE a.rolname = ANY($1::text[]) ORDER BY a.rolname`,
      [roles],
    );
    const roleSettings = await q(
      `SELECT coalesce(d.datname, '*') AS db, coalesce(r.rolname, '*') AS role, s.setconfig
         FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
        WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
           OR r.rolname = ANY($1::text[]) ORDER BY 1, 2`,
      [roles],
    );
    const [database] = await q(
      `SELECT datname, datallowconn, datconnlimit, datistemplate, datacl::text AS acl, datdba::regrole::text AS owner
         FROM pg_database WHERE datname = current_database()`,
    );
    const sequences = await q(
      'SELECT schemaname, sequencename, last_value::text AS last_value FROM pg_sequences ORDER BY 1, 2',
    );
    const [attackSeq] = await q<{ last_value: string; is_called: boolean }>(
      'SELECT last_value::text AS last_value, is_called FROM public.attack_seq',
    );
    const [counts] = await q<{
      advisory: number;
      held: number;
      busy: number;
      xacts: number;
      lobs: number;
    }>(
      `SELECT (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory'
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS advisory,
              (SELECT count(*)::int FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE a.usename = ANY($1::text[]) AND a.application_name <> $2) AS held,
              (SELECT count(*)::int FROM pg_stat_activity
                WHERE usename = ANY($1::text[]) AND application_name <> $2 AND state IS DISTINCT FROM 'idle') AS busy,
              (SELECT count(*)::int FROM pg_prepared_xacts WHERE database = current_database()) AS xacts,
              (SELECT count(*)::int FROM pg_largeobject_metadata) AS lobs`,
      [roles, PROBE_APP],
    );
    const autoConf = await q(
      `SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno`,
    );
    const forbidden = await q<{ name: string }>(
      `SELECT rolname AS name FROM pg_roles WHERE rolname = ANY($1::text[])
       UNION ALL SELECT datname FROM pg_database WHERE datname = ANY($1::text[])
       UNION ALL SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])`,
      [[...opts.forbiddenNames]],
    );
    return {
      tables,
      objects: objs,
      roles: roleRows,
      roleSettings,
      readSessionSettings: await readSessionSettings(),
      database,
      sequences,
      attackSeq,
      advisoryLocks: counts?.advisory ?? -1,
      locksHeldByServerRoles: counts?.held ?? -1,
      busyServerSessions: counts?.busy ?? -1,
      preparedXacts: counts?.xacts ?? -1,
      largeObjects: counts?.lobs ?? -1,
      autoConf,
      existingFiles: opts.files.filter((f) => existsSync(f)),
      forbiddenNamesFound: forbidden.map((r) => r.name).sort(),
    };
  }

  return {
    snapshot,
    get notifications() {
      return notifications;
    },
    query: q,
    async close() {
      await admin.end().catch(() => undefined);
    },
  };
}

/** State counts that may lag a little behind a call (a cancelled backend finishing, a destroyed connection closing). */
export const SETTLING: ReadonlySet<string> = new Set([
  'busyServerSessions',
  'locksHeldByServerRoles',
]);

/**
 * `after` with each settling count that is below `before`'s taken as `before`'s: an earlier
 * call's backend that was still finishing when `before` was taken has gone idle meanwhile. A
 * count above `before`'s (left behind by this call) still differs.
 */
export function settled(before: DbState, after: DbState): DbState {
  const out: Record<string, unknown> = { ...after };
  for (const k of SETTLING) {
    const b = before[k as keyof DbState];
    const a = after[k as keyof DbState];
    if (typeof a === 'number' && typeof b === 'number' && a < b) out[k] = b;
  }
  return out as unknown as DbState;
}

/**
 * Snapshots until the state {@link settled} equals `before`, for at most 5 s while only
 * {@link SETTLING} counts differ (any other difference returns at once); returns the last
 * snapshot, for the caller to compare as `settled(before, after)`.
 */
export async function snapshotSettled(probe: StateProbe, before: DbState): Promise<DbState> {
  let after = await probe.snapshot();
  const deadline = Date.now() + 5_000;
  while (!isDeepStrictEqual(settled(before, after), before) && Date.now() < deadline) {
    const differing = (Object.keys(before) as (keyof DbState)[]).filter(
      (k) => !isDeepStrictEqual(before[k], after[k]),
    );
    if (!differing.every((k) => SETTLING.has(k))) break;
    await sleep(50);
    after = await probe.snapshot();
  }
  return after;
}
