import { loadModule } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { toGenericSql } from './generic-sql.js';

beforeAll(async () => {
  await loadModule();
});

describe('toGenericSql: every client constant becomes a typed parameter', () => {
  it.each([
    ['SELECT 1 / 0 AS x', 'SELECT $2::int4 / $1::int4 AS x', 2],
    ["SELECT 'a' || name FROM genre", 'SELECT $1 || name FROM genre', 1],
    [
      'SELECT -3, 1.5, 99999999999, 1e400',
      'SELECT $4::int4, $3::numeric, $2::int8, $1::numeric',
      4,
    ],
    [
      "SELECT x FROM t WHERE d > date '2020-01-01' AND n = $2",
      'SELECT x FROM t WHERE d > CAST($3 AS date) AND n = $2',
      3,
    ],
    [
      "SELECT varchar(10) 'é', x::numeric(10,2) FROM t GROUP BY 1 ORDER BY 2 LIMIT 5",
      'SELECT CAST($2 AS varchar(10)), x::numeric(10,2) FROM t GROUP BY 1 ORDER BY 2 LIMIT $1::int4',
      2,
    ],
    ['SELECT NULL, true, x[1] FROM t', 'SELECT NULL, true, x[$1::int4] FROM t', 1],
    [
      "SELECT array_fill(1, ARRAY[300000000]) @> '{2}'",
      'SELECT array_fill($3::int4, ARRAY[$2::int4]) @> $1',
      3,
    ],
  ])('%s', (sql, expected, paramCount) => {
    expect(toGenericSql(sql)).toEqual({ ok: true, sql: expected, paramCount });
  });

  it.each(["SELECT interval '1' day", 'SELECT ('])('refuses what it cannot rewrite: %s', (sql) => {
    expect(toGenericSql(sql).ok).toBe(false);
  });
});
