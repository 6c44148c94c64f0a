-- Initialises the compose evaluation database (runs once, on an empty data volume, from
-- /docker-entrypoint-initdb.d, through psql as the superuser, connected to POSTGRES_DB).
-- 1. a small sample schema with personal data, so the server's redaction is visible;
-- 2. the least-privilege read role `mcp_read` that the MCP server connects as.
\set ON_ERROR_STOP on
-- psql runs the command in backquotes and drops the trailing newline.
\set read_password `cat /run/secrets/postgres_read_password`

CREATE TABLE public.customer (
  customer_id integer PRIMARY KEY,
  first_name  text NOT NULL,
  last_name   text NOT NULL,
  email       text NOT NULL,
  phone       text,
  country     text NOT NULL
);
CREATE TABLE public.invoice (
  invoice_id   integer PRIMARY KEY,
  customer_id  integer NOT NULL REFERENCES public.customer,
  invoice_date date NOT NULL,
  total        numeric(10, 2) NOT NULL
);
INSERT INTO public.customer VALUES
  (1, 'Ada', 'Lovelace', 'ada.lovelace@example.com', '+44 20 7946 0018', 'United Kingdom'),
  (2, 'Grace', 'Hopper', 'grace.hopper@example.org', '+1 202 555 0143', 'USA'),
  (3, 'Alan', 'Turing', 'alan.turing@example.net', '+44 161 496 0731', 'United Kingdom'),
  (4, 'Katherine', 'Johnson', 'kjohnson@example.com', '+1 757 555 0199', 'USA'),
  (5, 'Edsger', 'Dijkstra', 'ewd@example.nl', '+31 20 794 1234', 'Netherlands');
INSERT INTO public.invoice VALUES
  (1, 1, '2026-01-05', 12.50), (2, 1, '2026-02-11', 7.25), (3, 2, '2026-01-20', 30.00),
  (4, 3, '2026-03-02', 4.99), (5, 4, '2026-03-15', 18.40), (6, 5, '2026-04-01', 9.90);

-- Nothing for anybody by default: no CONNECT or TEMP on the database, no USAGE or CREATE on
-- schema public.
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- The MCP server's role: can log in and SELECT the sample tables, nothing else. Its sessions
-- start read-only (the server also runs every statement in a READ ONLY transaction).
CREATE ROLE mcp_read LOGIN PASSWORD :'read_password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT 8;
ALTER ROLE mcp_read SET default_transaction_read_only = on;
ALTER ROLE mcp_read SET statement_timeout = '30s';
GRANT CONNECT ON DATABASE :"DBNAME" TO mcp_read;
GRANT USAGE ON SCHEMA public TO mcp_read;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO mcp_read;
