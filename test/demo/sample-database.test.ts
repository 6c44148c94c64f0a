/**
 * The generated sample database of the test kit (what the demo loads on a plain clone): the same
 * seed gives the same data, the data looks like what the demo promises (names, e-mails, phones,
 * Luhn-valid card numbers, planted API keys), and it is loaded with the same least-privilege
 * roles as Chinook (the read role cannot write, the write role cannot run DDL).
 */
import {
  createSampleDatabase,
  SAMPLE_DATABASE_SEED,
  sampleDatabaseSql,
  startTestPostgres,
  type TestDatabase,
  type TestPostgres,
} from '@hardened-mcp/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Luhn check (ISO/IEC 7812-1 Annex B) over the digits of `card`. */
function luhnValid(card: string): boolean {
  const digits = card.replace(/\D/g, '');
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length >= 13 && sum % 10 === 0;
}

/** Runs the statements one after the other on one connection; returns the last one's rows. */
async function query<T extends pg.QueryResultRow>(url: string, ...sql: string[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let rows: T[] = [];
    for (const statement of sql) rows = (await client.query<T>(statement)).rows;
    return rows;
  } finally {
    await client.end();
  }
}

describe('sampleDatabaseSql', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = sampleDatabaseSql();
    const b = sampleDatabaseSql({ seed: SAMPLE_DATABASE_SEED });
    const other = sampleDatabaseSql({ seed: SAMPLE_DATABASE_SEED + 1 });
    expect(b.sql).toBe(a.sql);
    expect(other.sql).not.toBe(a.sql);
    expect(a.rows.customer).toBe(120);
  });

  it('plants vendor-shaped API keys', () => {
    const { credentials, sql } = sampleDatabaseSql();
    expect(credentials.map((c) => c.service)).toEqual([
      'stripe',
      'aws-billing-export',
      'sendgrid',
      'internal-webhook',
    ]);
    expect(credentials[0]?.apiKey).toMatch(/^sk_live_[A-Za-z0-9]{32}$/);
    expect(credentials[1]?.apiKey).toMatch(/^AKIA[A-Z2-7]{16}$/);
    for (const { apiKey } of credentials) expect(sql).toContain(apiKey);
  });

  it('rejects out-of-range options', () => {
    expect(() => sampleDatabaseSql({ seed: -1 })).toThrow(RangeError);
    expect(() => sampleDatabaseSql({ customers: 0 })).toThrow(RangeError);
    expect(() => sampleDatabaseSql({ customers: 1.5 })).toThrow(RangeError);
  });
});

describe('createSampleDatabase', () => {
  let server: TestPostgres;
  let db: TestDatabase;

  beforeAll(async () => {
    server = await startTestPostgres();
    db = await createSampleDatabase(server, { customers: 30 });
  });
  afterAll(async () => {
    await db?.drop();
    await server?.stop();
  });

  it('loads realistic customers, invoices whose totals add up, and the planted keys', async () => {
    const customers = await query<{ email: string; phone: string; card_number: string }>(
      db.readUrl,
      'SELECT email, phone, card_number FROM customer ORDER BY customer_id',
    );
    expect(customers).toHaveLength(30);
    for (const c of customers) {
      expect(c.email).toMatch(/^[^@\s]+@example\.(com|org|net)$/);
      expect(c.phone).toMatch(/^\+\d{8,15}$/);
      expect(luhnValid(c.card_number)).toBe(true);
    }
    const mismatched = await query<{ n: string }>(
      db.readUrl,
      `SELECT count(*) AS n FROM invoice i
        WHERE i.total <> (SELECT sum(l.unit_price * l.quantity) FROM invoice_line l
                           WHERE l.invoice_id = i.invoice_id)`,
    );
    expect(mismatched[0]?.n).toBe('0');
    const keys = await query<{ api_key: string }>(
      db.readUrl,
      'SELECT api_key FROM integration_credential ORDER BY integration_id',
    );
    const expected = sampleDatabaseSql({ customers: 30 }).credentials.map((c) => c.apiKey);
    expect(keys.map((k) => k.api_key)).toEqual(expected);
  });

  it('gives the read role no write and the write role no DDL', async () => {
    await expect(query(db.readUrl, 'DELETE FROM customer')).rejects.toMatchObject({
      code: '25006', // read_only_sql_transaction
    });
    await expect(
      query(db.readUrl, 'SET default_transaction_read_only = off', 'DELETE FROM customer'),
    ).rejects.toMatchObject({ code: '42501' }); // insufficient_privilege
    await expect(query(db.writeUrl, 'DROP TABLE integration_credential')).rejects.toMatchObject({
      code: '42501',
    });
    await expect(query(db.writeUrl, 'TRUNCATE customer CASCADE')).rejects.toMatchObject({
      code: '42501',
    });
  });
});
