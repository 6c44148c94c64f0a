import pg from 'pg';

/**
 * Runs one statement on a fresh connection to `url` (e.g. a test database's admin URL) and
 * returns its rows; the connection is closed either way. For test setup and state checks.
 */
export async function queryAs<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: readonly unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, [...values])).rows;
  } finally {
    await c.end();
  }
}
