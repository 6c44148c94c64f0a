/**
 * The shared connector contract (test kit) against the built `hardened-mcp-postgres` bin over
 * stdio, on the test PostgreSQL with Chinook (or the generated sample data without ../shared).
 */
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { configArgs, describeConnectorContract } from '@hardened-mcp/test-kit/contract';
import { afterAll, beforeAll } from 'vitest';
import { queryAs } from '../support/db.ts';
import { POSTGRES_BIN, startPostgresServer } from '../support/server.ts';

let server: TestPostgres;
let db: ChinookDatabase;
beforeAll(async () => {
  server = await startTestPostgres();
  db = await createChinookDatabase(server);
});
afterAll(async () => {
  await db?.drop();
  await server?.stop();
});

const CONFIG = { identity: { principal: 'contract', roles: ['writer'] } };
const env = () => ({ POSTGRES_URL: db.readUrl, POSTGRES_WRITE_URL: db.writeUrl });

describeConnectorContract({
  connector: 'postgres',
  start: ({ mode, capabilities }) =>
    startPostgresServer({ env: env(), config: { ...CONFIG, mode }, capabilities }),
  rawCommand: async () => ({ args: [POSTGRES_BIN, ...configArgs(CONFIG)], env: env() }),
  // Chinook's first customer (Luís Gonçalves): a real e-mail address in the source.
  readCall: {
    name: 'postgres_query',
    arguments: {
      sql: 'SELECT first_name, email FROM customer WHERE customer_id = $1',
      params: [1],
    },
    pii: 'luisg@embraer.com.br',
  },
  failingCall: {
    name: 'postgres_query',
    arguments: { sql: 'SELECT no_such_column FROM customer' },
  },
  writeCall: {
    name: 'postgres_insert_rows',
    arguments: { table: 'genre', rows: [{ genre_id: 9_100, name: 'Contract' }] },
    unchanged: async () =>
      (
        await queryAs<{ n: string }>(
          db.adminUrl,
          'SELECT count(*) AS n FROM genre WHERE genre_id = 9100',
        )
      )[0]?.n === '0',
  },
});
