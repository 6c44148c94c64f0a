/**
 * Built-in function allowlist (and hard denylist) for the read-only SQL guard.
 *
 * Policy: a query may only call functions whose (bare, case-sensitive) name is in
 * {@link BUILTIN_FUNCTION_ALLOWLIST}, or that the operator lists in
 * `SqlGuardPolicy.extraFunctions`. Anything in {@link DENIED_FUNCTION_NAMES} or matching
 * {@link DENIED_FUNCTION_PREFIXES} is refused even if the operator lists it, whatever
 * schema it is qualified with (extensions such as dblink are usually installed in
 * `public`, so `public.dblink` must be refused too).
 *
 * Source of truth for what each function does: PostgreSQL documentation, Chapter 9
 * "Functions and Operators" (section numbers below follow the PostgreSQL 17/18 manual).
 * Only functions that are side-effect free, do not read server files, settings or other
 * sessions' state, and do not execute SQL text are listed.
 *
 * Names are stored exactly as the PostgreSQL parser produces them for unquoted
 * identifiers (lower case). Matching is case-sensitive on purpose: `"PG_SLEEP"(1)` is a
 * call of a function literally named `PG_SLEEP`, which is not on the list.
 *
 * Note that COALESCE, NULLIF, GREATEST, LEAST, CASE, casts (`::`/CAST), GROUPING(),
 * CURRENT_DATE/CURRENT_TIMESTAMP/CURRENT_USER/..., IS [NOT] DISTINCT FROM and the SQL/JSON
 * constructors (JSON_OBJECT(... : ...), JSON_VALUE, JSON_TABLE, ...) are dedicated AST
 * nodes, not function calls, and are handled by the guard itself.
 *
 * Resource exhaustion (generate_series over billions of rows, repeat()/lpad() with huge
 * lengths, catastrophic regular expressions) is intentionally not policed here: the
 * executor must bound it with statement_timeout, row limits and a memory-limited role. The
 * exceptions, work PostgreSQL does not interrupt (containment over values built in the query,
 * `repeat`/`lpad`/`rpad`/`array_fill`/`format` beyond 1 MiB or with non-literal sizes, `jsonb - text[]`,
 * `replace`/`regexp_replace` with long replacements), are refused by the guard itself: see
 * ./uninterruptible.ts.
 */

/** §9.3 Mathematical Functions and Operators (random() is volatile but has no side effect beyond the session PRNG; setseed() is denied). */
const MATH_FUNCTIONS = [
  'abs',
  'cbrt',
  'ceil',
  'ceiling',
  'degrees',
  'div',
  'erf',
  'erfc',
  'exp',
  'factorial',
  'floor',
  'gamma',
  'gcd',
  'lcm',
  'lgamma',
  'ln',
  'log',
  'log10',
  'min_scale',
  'mod',
  'pi',
  'power',
  'pow',
  'radians',
  'round',
  'scale',
  'sign',
  'sqrt',
  'trim_scale',
  'trunc',
  'width_bucket',
  'random',
  'random_normal',
  'acos',
  'acosd',
  'asin',
  'asind',
  'atan',
  'atand',
  'atan2',
  'atan2d',
  'cos',
  'cosd',
  'cot',
  'cotd',
  'sin',
  'sind',
  'tan',
  'tand',
  'sinh',
  'cosh',
  'tanh',
  'asinh',
  'acosh',
  'atanh',
] as const;

/**
 * §9.4 String Functions and Operators, §9.5 Binary String, §9.6 Bit String, §9.7 Pattern
 * Matching. `btrim`/`ltrim`/`rtrim`, `position`, `substring`, `overlay`, `normalize`,
 * `is_normalized`, `like_escape`, `similar_to_escape` and `similar_escape` are also what the
 * parser emits (as `pg_catalog.<name>`) for the SQL-standard syntax TRIM(...), POSITION(a IN b),
 * SUBSTRING(a FROM b), OVERLAY(...), NORMALIZE(...), IS NORMALIZED, LIKE ... ESCAPE and
 * SIMILAR TO.
 */
const STRING_FUNCTIONS = [
  'ascii',
  'bit_length',
  'btrim',
  'casefold',
  'char_length',
  'character_length',
  'chr',
  'concat',
  'concat_ws',
  'format',
  'initcap',
  'left',
  'length',
  'lower',
  'lpad',
  'ltrim',
  'md5',
  'normalize',
  'is_normalized',
  'octet_length',
  'overlay',
  'parse_ident',
  'position',
  'quote_ident',
  'quote_literal',
  'quote_nullable',
  'regexp_count',
  'regexp_instr',
  'regexp_like',
  'regexp_match',
  'regexp_matches',
  'regexp_replace',
  'regexp_split_to_array',
  'regexp_split_to_table',
  'regexp_substr',
  'repeat',
  'replace',
  'reverse',
  'right',
  'rpad',
  'rtrim',
  'split_part',
  'starts_with',
  'string_to_array',
  'string_to_table',
  'strpos',
  'substr',
  'substring',
  'to_ascii',
  'to_bin',
  'to_hex',
  'to_oct',
  'translate',
  'trim',
  'unistr',
  'upper',
  'like_escape',
  'similar_escape',
  'similar_to_escape',
  // binary strings / bit strings
  'bit_count',
  'convert',
  'convert_from',
  'convert_to',
  'crc32',
  'crc32c',
  'decode',
  'encode',
  'get_bit',
  'get_byte',
  'set_bit',
  'set_byte',
  'sha224',
  'sha256',
  'sha384',
  'sha512',
] as const;

/** §9.8 Data Type Formatting Functions. */
const FORMATTING_FUNCTIONS = ['to_char', 'to_date', 'to_number', 'to_timestamp'] as const;

/**
 * §9.9 Date/Time Functions and Operators. `extract` and `timezone` are also what the parser
 * emits for EXTRACT(field FROM x) and `x AT TIME ZONE z` / `x AT LOCAL`; `overlaps` for the
 * OVERLAPS operator syntax. pg_sleep* (§9.9.6 Delaying Execution) is denied.
 */
const DATETIME_FUNCTIONS = [
  'age',
  'clock_timestamp',
  'date_add',
  'date_bin',
  'date_part',
  'date_subtract',
  'date_trunc',
  'extract',
  'isfinite',
  'justify_days',
  'justify_hours',
  'justify_interval',
  'make_date',
  'make_interval',
  'make_time',
  'make_timestamp',
  'make_timestamptz',
  'now',
  'overlaps',
  'statement_timestamp',
  'timeofday',
  'timezone',
  'transaction_timestamp',
] as const;

/** §9.10 Enum Support Functions. */
const ENUM_FUNCTIONS = ['enum_first', 'enum_last', 'enum_range'] as const;

/** §9.12 Network Address Functions and Operators. */
const NETWORK_FUNCTIONS = [
  'abbrev',
  'broadcast',
  'family',
  'host',
  'hostmask',
  'inet_merge',
  'inet_same_family',
  'masklen',
  'netmask',
  'network',
  'set_masklen',
] as const;

/**
 * §9.13 Text Search Functions and Operators. ts_stat() and the two-argument form of
 * ts_rewrite() execute SQL text and are denied; ts_debug/ts_lexize (catalog/dictionary
 * introspection) and get_current_ts_config (reads a setting) are simply not listed.
 */
const TEXT_SEARCH_FUNCTIONS = [
  'array_to_tsvector',
  'numnode',
  'phraseto_tsquery',
  'plainto_tsquery',
  'querytree',
  'setweight',
  'strip',
  'to_tsquery',
  'to_tsvector',
  'ts_delete',
  'ts_filter',
  'ts_headline',
  'ts_rank',
  'ts_rank_cd',
  'tsquery_phrase',
  'tsvector_to_array',
  'websearch_to_tsquery',
] as const;

/** §9.14 UUID Functions. */
const UUID_FUNCTIONS = [
  'gen_random_uuid',
  'uuidv4',
  'uuidv7',
  'uuid_extract_timestamp',
  'uuid_extract_version',
] as const;

/**
 * §9.16 JSON Functions and Operators (processing, creation and SQL/JSON path functions).
 * The SQL/JSON syntax (JSON_OBJECT(k: v), JSON_ARRAY(...), JSON_VALUE, JSON_QUERY,
 * JSON_EXISTS, JSON_TABLE, IS JSON, JSON(), JSON_SCALAR, JSON_SERIALIZE) are AST nodes
 * handled by the guard; `json_object(text[])` is the classic function and is listed.
 */
const JSON_FUNCTIONS = [
  'array_to_json',
  'json_array_elements',
  'json_array_elements_text',
  'json_array_length',
  'json_build_array',
  'json_build_object',
  'json_each',
  'json_each_text',
  'json_extract_path',
  'json_extract_path_text',
  'json_object',
  'json_object_keys',
  'json_populate_record',
  'json_populate_recordset',
  'json_strip_nulls',
  'json_to_record',
  'json_to_recordset',
  'json_typeof',
  'jsonb_array_elements',
  'jsonb_array_elements_text',
  'jsonb_array_length',
  'jsonb_build_array',
  'jsonb_build_object',
  'jsonb_each',
  'jsonb_each_text',
  'jsonb_extract_path',
  'jsonb_extract_path_text',
  'jsonb_insert',
  'jsonb_object',
  'jsonb_object_keys',
  'jsonb_path_exists',
  'jsonb_path_exists_tz',
  'jsonb_path_match',
  'jsonb_path_match_tz',
  'jsonb_path_query',
  'jsonb_path_query_array',
  'jsonb_path_query_array_tz',
  'jsonb_path_query_first',
  'jsonb_path_query_first_tz',
  'jsonb_path_query_tz',
  'jsonb_populate_record',
  'jsonb_populate_record_valid',
  'jsonb_populate_recordset',
  'jsonb_pretty',
  'jsonb_set',
  'jsonb_set_lax',
  'jsonb_strip_nulls',
  'jsonb_to_record',
  'jsonb_to_recordset',
  'jsonb_typeof',
  'row_to_json',
  'to_json',
  'to_jsonb',
] as const;

/** §9.18 Conditional Expressions: num_nulls/num_nonnulls (§9.2). COALESCE etc. are AST nodes. */
const CONDITIONAL_FUNCTIONS = ['num_nonnulls', 'num_nulls'] as const;

/** §9.19 Array Functions and Operators. */
const ARRAY_FUNCTIONS = [
  'array_append',
  'array_cat',
  'array_dims',
  'array_fill',
  'array_length',
  'array_lower',
  'array_ndims',
  'array_position',
  'array_positions',
  'array_prepend',
  'array_remove',
  'array_replace',
  'array_reverse',
  'array_sample',
  'array_shuffle',
  'array_sort',
  'array_to_string',
  'array_upper',
  'cardinality',
  'trim_array',
  'unnest',
] as const;

/** §9.20 Range/Multirange Functions and Operators, plus the range/multirange constructors. */
const RANGE_FUNCTIONS = [
  'isempty',
  'lower_inc',
  'lower_inf',
  'upper_inc',
  'upper_inf',
  'range_merge',
  'multirange',
  'int4range',
  'int8range',
  'numrange',
  'tsrange',
  'tstzrange',
  'daterange',
  'int4multirange',
  'int8multirange',
  'nummultirange',
  'tsmultirange',
  'tstzmultirange',
  'datemultirange',
] as const;

/** §9.21 Aggregate Functions (general-purpose, statistical, ordered-set, hypothetical-set). */
const AGGREGATE_FUNCTIONS = [
  'any_value',
  'array_agg',
  'avg',
  'bit_and',
  'bit_or',
  'bit_xor',
  'bool_and',
  'bool_or',
  'count',
  'every',
  'json_agg',
  'json_agg_strict',
  'json_object_agg',
  'json_object_agg_strict',
  'json_object_agg_unique',
  'json_object_agg_unique_strict',
  'jsonb_agg',
  'jsonb_agg_strict',
  'jsonb_object_agg',
  'jsonb_object_agg_strict',
  'jsonb_object_agg_unique',
  'jsonb_object_agg_unique_strict',
  'max',
  'min',
  'range_agg',
  'range_intersect_agg',
  'string_agg',
  'sum',
  'corr',
  'covar_pop',
  'covar_samp',
  'regr_avgx',
  'regr_avgy',
  'regr_count',
  'regr_intercept',
  'regr_r2',
  'regr_slope',
  'regr_sxx',
  'regr_sxy',
  'regr_syy',
  'stddev',
  'stddev_pop',
  'stddev_samp',
  'variance',
  'var_pop',
  'var_samp',
  'mode',
  'percentile_cont',
  'percentile_disc',
] as const;

/** §9.22 Window Functions (rank/dense_rank/percent_rank/cume_dist double as hypothetical-set aggregates). */
const WINDOW_FUNCTIONS = [
  'row_number',
  'rank',
  'dense_rank',
  'percent_rank',
  'cume_dist',
  'ntile',
  'lag',
  'lead',
  'first_value',
  'last_value',
  'nth_value',
] as const;

/** §9.26 Set Returning Functions. */
const SET_RETURNING_FUNCTIONS = ['generate_series', 'generate_subscripts'] as const;

/**
 * §9.27 System Information Functions — only the harmless, non-revealing subset:
 * current_database(), current_schema() (both equal to SQL-standard value functions the
 * parser already accepts), pg_typeof(), pg_collation_for (what COLLATION FOR (x) parses
 * to), pg_input_is_valid()/pg_input_error_info() (pure type-input checks) and the §9.28
 * pg_size_pretty()/pg_size_bytes() formatters (no file access). version() is deliberately
 * NOT listed: it discloses the exact server build, compiler and OS, which helps an attacker
 * pick exploits and has no analytics value (see DENIED_FUNCTION_NAMES).
 */
const SYSTEM_INFO_FUNCTIONS = [
  'current_database',
  'current_schema',
  'pg_collation_for',
  'pg_input_error_info',
  'pg_input_is_valid',
  'pg_size_bytes',
  'pg_size_pretty',
  'pg_typeof',
] as const;

/**
 * Functional-notation casts (§4.2.9 Type Casts: `typename(expr)`), for the common types
 * whose cast function or I/O conversion is pure.
 */
const CAST_FUNCTIONS = [
  'bool',
  'bpchar',
  'date',
  'float4',
  'float8',
  'int2',
  'int4',
  'int8',
  'interval',
  'json',
  'jsonb',
  'numeric',
  'text',
  'time',
  'timestamp',
  'timestamptz',
  'timetz',
  'uuid',
  'varchar',
] as const;

/**
 * Functions a query may call, by bare name (a `pg_catalog.` qualification is treated as the
 * bare name). Shape: lower-case PostgreSQL function names. Source: PostgreSQL docs
 * Chapter 9, sections as annotated on the groups above.
 */
export const BUILTIN_FUNCTION_ALLOWLIST: ReadonlySet<string> = new Set<string>([
  ...MATH_FUNCTIONS,
  ...STRING_FUNCTIONS,
  ...FORMATTING_FUNCTIONS,
  ...DATETIME_FUNCTIONS,
  ...ENUM_FUNCTIONS,
  ...NETWORK_FUNCTIONS,
  ...TEXT_SEARCH_FUNCTIONS,
  ...UUID_FUNCTIONS,
  ...JSON_FUNCTIONS,
  ...CONDITIONAL_FUNCTIONS,
  ...ARRAY_FUNCTIONS,
  ...RANGE_FUNCTIONS,
  ...AGGREGATE_FUNCTIONS,
  ...WINDOW_FUNCTIONS,
  ...SET_RETURNING_FUNCTIONS,
  ...SYSTEM_INFO_FUNCTIONS,
  ...CAST_FUNCTIONS,
]);

/**
 * Table sampling methods allowed in `TABLESAMPLE method(...)` (SELECT reference, "TABLESAMPLE"
 * clause; PostgreSQL docs §7.2.1.2 / Chapter 59 "Writing a Table Sampling Method"). Only the
 * two built-in methods; extension methods (tsm_system_rows, tsm_system_time) must be added
 * through `extraFunctions`.
 */
export const TABLESAMPLE_METHOD_ALLOWLIST: ReadonlySet<string> = new Set<string>([
  'bernoulli',
  'system',
]);

/**
 * Function names that are refused even when listed in `extraFunctions` and whatever schema
 * qualifies them. Shape: exact lower-case names. Reasons (PostgreSQL docs section):
 * - pg_sleep, pg_sleep_for, pg_sleep_until — hold a backend/connection (§9.9.6 Delaying Execution).
 * - set_config, current_setting, pg_show_all_settings, pg_settings_get_flags — change or leak
 *   server configuration (§9.28.1 Configuration Settings Functions).
 * - nextval, setval, currval, lastval — write sequence state / leak session state (§9.17).
 * - pg_terminate_backend, pg_cancel_backend, pg_reload_conf, pg_rotate_logfile,
 *   pg_log_backend_memory_contexts, pg_signal_backend — signal the server or other sessions
 *   (§9.28.2 Server Signaling Functions).
 * - pg_notify, pg_listening_channels, pg_notification_queue_usage — NOTIFY side effects
 *   and queue inspection (§9.27, NOTIFY reference).
 * - pg_switch_wal, pg_promote, pg_import_system_collations, pg_export_snapshot,
 *   pg_log_standby_snapshot, pg_sync_replication_slots — administration with side effects
 *   (§9.28.3–9.28.7).
 * - pg_blocking_pids, pg_safe_snapshot_blocking_pids, pg_backend_pid, pg_current_logfile,
 *   pg_postmaster_start_time, pg_conf_load_time, inet_server_addr, inet_server_port,
 *   inet_client_addr, inet_client_port, system_user — disclose other sessions, file paths or
 *   server/network details (§9.27 System Information Functions).
 * - version — discloses exact server build/OS (§9.27); no analytics value.
 * - setseed — mutates session state (§9.3 Random Functions).
 * - ts_stat, ts_rewrite — accept SQL text and execute it (§9.13 Text Search).
 * - xpath, xpath_exists, xmlexists, xml_is_well_formed* — XML processing is out of scope
 *   (and query_to_xml & friends execute SQL text, see prefixes).
 * - loread, lowrite — large-object I/O (§35.4 Server-Side Functions).
 */
export const DENIED_FUNCTION_NAMES: ReadonlySet<string> = new Set<string>([
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'set_config',
  'current_setting',
  'pg_show_all_settings',
  'pg_settings_get_flags',
  'nextval',
  'setval',
  'currval',
  'lastval',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_log_backend_memory_contexts',
  'pg_signal_backend',
  'pg_notify',
  'pg_listening_channels',
  'pg_notification_queue_usage',
  'pg_switch_wal',
  'pg_promote',
  'pg_import_system_collations',
  'pg_export_snapshot',
  'pg_log_standby_snapshot',
  'pg_sync_replication_slots',
  'pg_blocking_pids',
  'pg_safe_snapshot_blocking_pids',
  'pg_backend_pid',
  'pg_current_logfile',
  'pg_postmaster_start_time',
  'pg_conf_load_time',
  'inet_server_addr',
  'inet_server_port',
  'inet_client_addr',
  'inet_client_port',
  'system_user',
  'version',
  'setseed',
  'ts_stat',
  'ts_rewrite',
  'xpath',
  'xpath_exists',
  'xmlexists',
  'xml_is_well_formed',
  'xml_is_well_formed_document',
  'xml_is_well_formed_content',
  'loread',
  'lowrite',
]);

/**
 * Name prefixes that are refused even when listed in `extraFunctions`, whatever schema
 * qualifies them. Shape: lower-case prefixes. Reasons (PostgreSQL docs section):
 * - pg_sleep — any current or future sleep variant (§9.9.6).
 * - pg_read_, pg_ls_, pg_stat_file, pg_file_, pg_logdir_ — read/list/write server files
 *   (§9.28.9 Generic File Access Functions; adminpack).
 * - lo_ — large objects: lo_import/lo_export touch server files, others write (§35.4).
 * - dblink — opens connections and runs arbitrary SQL elsewhere (dblink module).
 * - pg_advisory_, pg_try_advisory_ — take session/transaction locks (§9.28.10 Advisory Lock Functions).
 * - query_to_xml, table_to_xml, cursor_to_xml, schema_to_xml, database_to_xml — execute SQL
 *   text or dump whole tables/schemas, bypassing the relation policy (§9.15.4 Mapping Tables to XML).
 * - pg_logical_, pg_replication_, pg_create_, pg_drop_, pg_copy_ — logical decoding,
 *   replication slots/origins; create/drop server objects (§9.28.6 Replication Management).
 * - pg_backup_, pg_start_backup, pg_stop_backup, pg_wal_ — backup and recovery control
 *   (§9.28.3, §9.28.4).
 * - txid_, pg_current_xact_id — txid_current()/pg_current_xact_id() assign a transaction id,
 *   i.e. a write (§9.27 Transaction ID and Snapshot Information Functions).
 * - pg_stat_ — other sessions' activity and statistics resets (§9.28, Chapter 27 Monitoring).
 */
export const DENIED_FUNCTION_PREFIXES: readonly string[] = [
  'pg_sleep',
  'pg_read_',
  'pg_ls_',
  'pg_stat_file',
  'pg_file_',
  'pg_logdir_',
  'lo_',
  'dblink',
  'pg_advisory_',
  'pg_try_advisory_',
  'query_to_xml',
  'table_to_xml',
  'cursor_to_xml',
  'schema_to_xml',
  'database_to_xml',
  'pg_logical_',
  'pg_replication_',
  'pg_create_',
  'pg_drop_',
  'pg_copy_',
  'pg_backup_',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_wal_',
  'txid_',
  'pg_current_xact_id',
  'pg_stat_',
];

/**
 * Whether a bare function name (the last component of a possibly qualified name) is on the
 * hard denylist. Comparison is case-insensitive so that a quoted `"PG_SLEEP"` or an
 * extension function registered under an upper-case name is also caught. Never throws.
 */
export function isDeniedFunctionName(bareName: string): boolean {
  const lower = bareName.toLowerCase();
  if (DENIED_FUNCTION_NAMES.has(lower)) return true;
  return DENIED_FUNCTION_PREFIXES.some((prefix) => lower.startsWith(prefix));
}
