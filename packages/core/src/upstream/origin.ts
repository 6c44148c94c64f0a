/**
 * The upstream's address: fixed by configuration, HTTPS only (loopback excepted, for tests), and
 * request paths that cannot leave it. Sources: WHATWG URL Standard (parsing, dot-segment and
 * backslash handling); RFC 3986 §3.3 (the `pchar` grammar of a path) and §5.2.4 (dot segments).
 */
import { isIP } from 'node:net';
import { StartupError } from '../errors.js';
import { UpstreamCallError, UpstreamFailure } from './errors.js';

/** A checked upstream base: an origin and an optional base path (no trailing `/`). */
export interface UpstreamBase {
  /** `https://host[:port]`, as `URL.origin` gives it. */
  readonly origin: string;
  /** `''` or a path such as `/jira` (no trailing `/`) that every request path is appended to. */
  readonly basePath: string;
}

/**
 * Whether `hostname` (as `URL.hostname` gives it) is a loopback name: `localhost`, an address in
 * 127.0.0.0/8 (RFC 1122 §3.2.1.3) or `::1` (RFC 4291 §2.5.3).
 */
export function isLoopbackHost(hostname: string): boolean {
  const host =
    hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host.toLowerCase() === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

/**
 * Parses the configured upstream URL, e.g. `https://acme.atlassian.net` or
 * `https://jira.internal/jira`.
 *
 * Rules: `https:` only, except `http:` to a loopback host ({@link isLoopbackHost}); no user
 * name or password, query or fragment; the path, if any, is a clean base path (its trailing `/`
 * is dropped).
 *
 * @throws StartupError naming the rule that failed (the message never echoes the URL, which may
 *   carry a token).
 */
export function parseUpstreamBase(raw: string): UpstreamBase {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StartupError('the upstream URL is not a valid absolute URL');
  }
  if (url.protocol !== 'https:') {
    if (url.protocol !== 'http:' || !isLoopbackHost(url.hostname))
      throw new StartupError('the upstream URL must use https: (http: only to a loopback address)');
  }
  if (url.username || url.password)
    throw new StartupError(
      'the upstream URL must not carry a user name or password (configure a credential)',
    );
  if (url.search || url.hash || raw.includes('?') || raw.includes('#'))
    throw new StartupError('the upstream URL must not have a query or fragment');
  const basePath = url.pathname.replace(/\/+$/, '');
  // The URL parser resolves dot segments silently; refuse them in the raw text too.
  if ((basePath !== '' && !isCleanPath(basePath)) || DOT_SEGMENT.test(raw))
    throw new StartupError('the upstream URL path is not a clean path (no dot segments or //)');
  return Object.freeze({ origin: url.origin, basePath });
}

/** A dot segment (or an encoded dot) in raw URL text, which the URL parser would resolve. */
const DOT_SEGMENT = /\/\.\.?(?:[/\\?#]|$)|%2e/i;
/** RFC 3986 §3.3 path-abempty made of `pchar` (unreserved, pct-encoded, sub-delims, `:`, `@`). */
const PATH = /^(?:\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*)+$/;
/** Percent-encoded `.`, `/`, `\` and controls (C0, DEL): separators and dots in disguise. */
const ENCODED_SEPARATOR = /%(?:2e|2f|5c|[01][0-9a-f]|7f)/i;

function isCleanPath(path: string): boolean {
  if (!PATH.test(path) || ENCODED_SEPARATOR.test(path)) return false;
  const segments = path.split('/').slice(1);
  // No empty segment except a final one (`/a/`), no `.` or `..` segment.
  return segments.every(
    (s, i) => (s !== '' || i === segments.length - 1) && s !== '.' && s !== '..',
  );
}

/** Query parameters: a missing (`undefined`) value is left out; an array repeats the name. */
export type UpstreamQuery = Readonly<
  Record<string, string | number | boolean | undefined | readonly (string | number | boolean)[]>
>;

/**
 * The absolute URL for `path` under `base`, with `query` encoded by `URLSearchParams`.
 *
 * `path` must start with a single `/` and consist of RFC 3986 path characters only: no `//`,
 * no `.` or `..` segment, no backslash, `?`, `#`, space or non-ASCII character, and no
 * percent-encoded `.`, `/`, `\` or control character. The built URL is checked to have the
 * configured origin and exactly the path given (the URL parser changed nothing).
 *
 * @throws UpstreamCallError `path_refused` (code `invalid_input`); nothing is sent.
 */
export function resolveUpstreamUrl(base: UpstreamBase, path: string, query?: UpstreamQuery): URL {
  if (typeof path !== 'string' || path.startsWith('//') || !isCleanPath(path))
    throw new UpstreamCallError(UpstreamFailure.PathRefused);
  const wanted = base.basePath + path;
  const url = new URL(base.origin + wanted);
  if (url.origin !== base.origin || url.pathname !== wanted)
    throw new UpstreamCallError(UpstreamFailure.PathRefused);
  if (query) {
    for (const [name, value] of Object.entries(query)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value])
        url.searchParams.append(name, String(v));
    }
  }
  return url;
}

/**
 * Encodes one path segment (`encodeURIComponent`) for {@link upstreamPath}. `.` and `..` stay as
 * they are and are then refused by {@link resolveUpstreamUrl}, as is an encoded `/`.
 */
export function encodePathSegment(value: string | number): string {
  return encodeURIComponent(String(value));
}

/**
 * A tagged template that encodes every interpolated value as one path segment:
 * ``upstreamPath`/rest/api/3/issue/${key}/comment` `` → `/rest/api/3/issue/ACME-1/comment`.
 */
export function upstreamPath(
  strings: TemplateStringsArray,
  ...values: readonly (string | number)[]
): string {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++)
    out += encodePathSegment(values[i] as string | number) + (strings[i + 1] ?? '');
  return out;
}

/**
 * The path (relative to the base) and query of an absolute URL found in upstream data (a `self`
 * link, a next-page URL, an attachment `content` URL), so that it can be requested with
 * {@link resolveUpstreamUrl}'s rules, or a refusal when it leaves the configured upstream.
 *
 * Rules: the URL has exactly the configured origin (scheme, host and port), no user name or
 * password, and a clean path ({@link resolveUpstreamUrl}) under the base path; dot segments and
 * encoded dots are refused in the raw text too (the URL parser would resolve them). A fragment
 * is dropped.
 *
 * @throws UpstreamCallError `foreign_url` (code `upstream_error`).
 */
export function upstreamPathOf(
  base: UpstreamBase,
  raw: string,
): { readonly path: string; readonly query: UpstreamQuery } {
  const foreign = () => new UpstreamCallError(UpstreamFailure.ForeignUrl);
  if (typeof raw !== 'string' || DOT_SEGMENT.test(raw.split('#')[0] ?? '')) throw foreign();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw foreign();
  }
  if (url.origin !== base.origin || url.username || url.password) throw foreign();
  if (!url.pathname.startsWith(`${base.basePath}/`)) throw foreign();
  const path = url.pathname.slice(base.basePath.length);
  if (path.startsWith('//') || !isCleanPath(path)) throw foreign();
  const query: Record<string, string[]> = {};
  for (const name of new Set(url.searchParams.keys())) query[name] = url.searchParams.getAll(name);
  return { path, query };
}
