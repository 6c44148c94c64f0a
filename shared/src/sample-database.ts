/**
 * A generated sample database that the repository provides by itself (no `../shared` kit):
 * realistic customers (names, postal addresses, e-mail addresses, phone numbers, payment card
 * numbers), products, invoices and invoice lines, and a table of integration credentials holding
 * planted API keys. The data comes from `@faker-js/faker` (its locale data is bundled, so nothing
 * is fetched) with a fixed seed: the same seed gives byte-identical SQL on every machine.
 *
 * The `customer` and `invoice` tables use Chinook's table and column names for the columns they
 * share (`customer_id`, `first_name`, `last_name`, `email`, `phone`, `country`, `total`, …), so a
 * query written for Chinook's customers and invoices runs on both.
 *
 * Every e-mail address is at a reserved example domain (RFC 2606); card numbers pass the Luhn
 * check but are made up; the planted keys are random strings in the vendors' formats.
 */
import { randomBytes } from 'node:crypto';
import {
  base,
  cs_CZ,
  de,
  en,
  en_CA,
  en_GB,
  en_IN,
  en_US,
  Faker,
  fr,
  type LocaleDefinition,
  pt_BR,
} from '@faker-js/faker';
import { escapeLiteral as literal } from 'pg';
import { createLeastPrivilegeDatabase, type TestDatabase } from './chinook.js';
import type { TestPostgres } from './postgres-server.js';

/** The seed used when none is given: the demo and the tests see the same data. */
export const SAMPLE_DATABASE_SEED = 20_251_207;

/** Default number of customers of the sample database. */
export const SAMPLE_DEFAULT_CUSTOMERS = 120;

/** Options of {@link sampleDatabaseSql} and {@link createSampleDatabase}. */
export interface SampleDatabaseOptions {
  /** Seed of the generator (a non-negative safe integer); default {@link SAMPLE_DATABASE_SEED}. */
  seed?: number;
  /** Number of customers, 1..100 000; default {@link SAMPLE_DEFAULT_CUSTOMERS}. */
  customers?: number;
}

/** Options of {@link createSampleDatabase}. */
export interface CreateSampleDatabaseOptions extends SampleDatabaseOptions {
  /** Database name; default `hmcp_sample_<12 hex>`. Must match `^[a-z_][a-z0-9_]{0,62}$`. */
  name?: string;
}

/** A planted credential of the `integration_credential` table. */
export interface PlantedCredential {
  /** The integration, e.g. `'stripe'`. */
  readonly service: string;
  /** The secret as stored in `integration_credential.api_key`. */
  readonly apiKey: string;
}

/** The generated SQL script and the values a test needs to check redaction against. */
export interface SampleDatabaseScript {
  /** Plain multi-statement SQL (DDL and INSERTs into schema `public`), no psql meta-commands. */
  readonly sql: string;
  /** Row counts per table. */
  readonly rows: Readonly<Record<SampleTable, number>>;
  /** The planted secrets, in table order. */
  readonly credentials: readonly PlantedCredential[];
}

/** Tables of the sample database, all in schema `public`. */
export type SampleTable =
  | 'customer'
  | 'product'
  | 'invoice'
  | 'invoice_line'
  | 'integration_credential';

/**
 * Countries of the customers, each with the faker locale its names, addresses and phone numbers
 * come from. Brazil, Czech Republic and USA also occur in Chinook, so the demo's query filtering
 * on them returns rows on both data sets.
 */
const COUNTRIES: readonly { readonly country: string; readonly locale: LocaleDefinition[] }[] = [
  { country: 'USA', locale: [en_US, en, base] },
  { country: 'Brazil', locale: [pt_BR, en, base] },
  { country: 'Czech Republic', locale: [cs_CZ, en, base] },
  { country: 'Germany', locale: [de, en, base] },
  { country: 'France', locale: [fr, en, base] },
  { country: 'Canada', locale: [en_CA, en, base] },
  { country: 'United Kingdom', locale: [en_GB, en, base] },
  { country: 'India', locale: [en_IN, en, base] },
];

/** Invoice dates fall in this range (UTC), whatever the current date. */
const INVOICE_DATES = { from: '2023-01-01T00:00:00Z', to: '2025-12-31T23:59:59Z' } as const;

const SCHEMA = `
CREATE TABLE public.customer (
  customer_id integer PRIMARY KEY,
  first_name text NOT NULL,
  last_name text NOT NULL,
  company text,
  address text NOT NULL,
  city text NOT NULL,
  state text,
  country text NOT NULL,
  postal_code text,
  phone text NOT NULL,
  email text NOT NULL,
  card_number text NOT NULL
);
CREATE TABLE public.product (
  product_id integer PRIMARY KEY,
  name text NOT NULL,
  unit_price numeric(10,2) NOT NULL
);
CREATE TABLE public.invoice (
  invoice_id integer PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES public.customer (customer_id),
  invoice_date timestamp NOT NULL,
  billing_address text NOT NULL,
  billing_city text NOT NULL,
  billing_country text NOT NULL,
  total numeric(10,2) NOT NULL
);
CREATE TABLE public.invoice_line (
  invoice_line_id integer PRIMARY KEY,
  invoice_id integer NOT NULL REFERENCES public.invoice (invoice_id),
  product_id integer NOT NULL REFERENCES public.product (product_id),
  unit_price numeric(10,2) NOT NULL,
  quantity integer NOT NULL
);
CREATE TABLE public.integration_credential (
  integration_id integer PRIMARY KEY,
  service text NOT NULL,
  owner_email text NOT NULL,
  api_key text NOT NULL,
  created_at timestamp NOT NULL
);
CREATE INDEX invoice_customer_id_idx ON public.invoice (customer_id);
CREATE INDEX invoice_line_invoice_id_idx ON public.invoice_line (invoice_id);
`;

/** Rows per multi-row INSERT statement (keeps each statement small). */
const ROWS_PER_INSERT = 500;

/**
 * Generates the sample database as one SQL script. Pure and deterministic: the same options
 * give the same script (no clock, no randomness besides the seeded generator).
 *
 * Sizes with the defaults: 120 customers, 40 products, about 900 invoices, about 2 700 invoice
 * lines, 4 integration credentials; about 300 KB of SQL.
 *
 * @throws RangeError when `seed` or `customers` is out of range.
 */
export function sampleDatabaseSql(opts: SampleDatabaseOptions = {}): SampleDatabaseScript {
  const seed = opts.seed ?? SAMPLE_DATABASE_SEED;
  const customerCount = opts.customers ?? SAMPLE_DEFAULT_CUSTOMERS;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative safe integer, got ${seed}.`);
  }
  if (!Number.isSafeInteger(customerCount) || customerCount < 1 || customerCount > 100_000) {
    throw new RangeError(`customers must be an integer from 1 to 100000, got ${customerCount}.`);
  }

  // One generator per country, each with its own derived seed, plus one for everything else.
  const fakers = COUNTRIES.map(({ locale }, i) => {
    const faker = new Faker({ locale });
    faker.seed(seed + i + 1);
    return faker;
  });
  const main = new Faker({ locale: [en, base] });
  main.seed(seed);

  const products = Array.from({ length: 40 }, (_, i) => ({
    id: i + 1,
    name: main.commerce.productName(),
    price: main.number.float({ min: 2, max: 400, fractionDigits: 2 }),
  }));

  const customers: string[] = [];
  const invoices: string[] = [];
  const lines: string[] = [];
  let invoiceId = 0;
  let lineId = 0;
  for (let c = 1; c <= customerCount; c++) {
    const countryIndex = main.number.int({ min: 0, max: COUNTRIES.length - 1 });
    const { country } = COUNTRIES[countryIndex] as (typeof COUNTRIES)[number];
    const f = fakers[countryIndex] as Faker;
    const firstName = f.person.firstName();
    const lastName = f.person.lastName();
    const address = f.location.streetAddress();
    const city = f.location.city();
    customers.push(
      row([
        c,
        firstName,
        lastName,
        f.helpers.maybe(() => f.company.name(), { probability: 0.3 }) ?? null,
        address,
        city,
        f.helpers.maybe(() => f.location.state(), { probability: 0.7 }) ?? null,
        country,
        f.location.zipCode(),
        f.phone.number({ style: 'international' }),
        f.internet.exampleEmail({ firstName, lastName }).toLowerCase(),
        f.finance.creditCardNumber({ issuer: main.helpers.arrayElement(['visa', 'mastercard']) }),
      ]),
    );
    const invoiceCount = main.number.int({ min: 3, max: 12 });
    for (let n = 0; n < invoiceCount; n++) {
      invoiceId += 1;
      let total = 0;
      const lineCount = main.number.int({ min: 1, max: 5 });
      for (let l = 0; l < lineCount; l++) {
        lineId += 1;
        const product = main.helpers.arrayElement(products);
        const quantity = main.number.int({ min: 1, max: 4 });
        total += Math.round(product.price * 100) * quantity;
        lines.push(row([lineId, invoiceId, product.id, product.price.toFixed(2), quantity]));
      }
      const date = main.date.between(INVOICE_DATES).toISOString().replace('T', ' ').slice(0, 19);
      invoices.push(row([invoiceId, c, date, address, city, country, (total / 100).toFixed(2)]));
    }
  }

  const credentials: PlantedCredential[] = [
    { service: 'stripe', apiKey: `sk_live_${main.string.alphanumeric(32)}` },
    {
      service: 'aws-billing-export',
      apiKey: `AKIA${main.string.fromCharacters('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`,
    },
    { service: 'sendgrid', apiKey: `api_key=${main.string.alphanumeric(40)}` },
    { service: 'internal-webhook', apiKey: `secret: ${main.string.alphanumeric(28)}` },
  ];
  const credentialRows = credentials.map((cred, i) =>
    row([
      i + 1,
      cred.service,
      main.internet.exampleEmail().toLowerCase(),
      cred.apiKey,
      main.date.between(INVOICE_DATES).toISOString().replace('T', ' ').slice(0, 19),
    ]),
  );

  const sql = [
    SCHEMA.trim(),
    ...inserts(
      'customer',
      'customer_id, first_name, last_name, company, address, city, state, country, postal_code, phone, email, card_number',
      customers,
    ),
    ...inserts(
      'product',
      'product_id, name, unit_price',
      products.map((p) => row([p.id, p.name, p.price.toFixed(2)])),
    ),
    ...inserts(
      'invoice',
      'invoice_id, customer_id, invoice_date, billing_address, billing_city, billing_country, total',
      invoices,
    ),
    ...inserts(
      'invoice_line',
      'invoice_line_id, invoice_id, product_id, unit_price, quantity',
      lines,
    ),
    ...inserts(
      'integration_credential',
      'integration_id, service, owner_email, api_key, created_at',
      credentialRows,
    ),
  ].join('\n');

  return {
    sql,
    rows: {
      customer: customers.length,
      product: products.length,
      invoice: invoices.length,
      invoice_line: lines.length,
      integration_credential: credentialRows.length,
    },
    credentials,
  };
}

/**
 * Creates a fresh database holding the generated sample data (see {@link sampleDatabaseSql}),
 * with the same least-privilege read and write roles as the Chinook databases (see
 * `createLeastPrivilegeDatabase` and {@link TestDatabase}).
 *
 * @param server a server from `startTestPostgres()`.
 * @throws RangeError for invalid options; Error when the name is invalid or any statement
 *   fails (whatever was created is dropped first).
 */
export async function createSampleDatabase(
  server: TestPostgres,
  opts: CreateSampleDatabaseOptions = {},
): Promise<TestDatabase> {
  const { sql } = sampleDatabaseSql(opts);
  return createLeastPrivilegeDatabase(server, {
    name: opts.name ?? `hmcp_sample_${randomBytes(6).toString('hex')}`,
    label: 'sample',
    // No parameters → simple query protocol, which accepts many statements at once.
    load: async (client) => {
      await client.query(sql);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers

type SqlValue = string | number | null;

/** One parenthesized row of SQL literals. Numbers are generated integers or fixed decimals. */
function row(values: readonly SqlValue[]): string {
  return `(${values.map((v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : literal(v))).join(', ')})`;
}

function inserts(table: SampleTable, columns: string, rows: readonly string[]): string[] {
  const statements: string[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    statements.push(
      `INSERT INTO public.${table} (${columns}) VALUES\n${rows.slice(i, i + ROWS_PER_INSERT).join(',\n')};`,
    );
  }
  return statements;
}
