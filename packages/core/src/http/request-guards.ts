import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { HttpRefusal, jsonRpcError, plainError } from './http-refusal.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** True when `host` is a loopback bind address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `host` as it appears in a URL or Host header: IPv6 literals in brackets. */
export function formatHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** A parsed `Host` header (RFC 9110 §7.2): lower-case name (IPv6 in brackets) and port. */
export interface Authority {
  readonly name: string;
  /** The explicit port, or `defaultPort` when the header has none (RFC 9110 §4.2.1-2). */
  readonly port: number;
}

/**
 * Parses `host[:port]` (RFC 9110 §7.2, RFC 3986 §3.2.2). Returns undefined for anything else:
 * an empty name, a bare IPv6 address, a port that is not 1-5 digits or above 65535, userinfo,
 * spaces or other characters a host name cannot have.
 *
 * @param defaultPort - the port a header without one means (80 for http, 443 for https)
 */
export function parseAuthority(value: string, defaultPort: number): Authority | undefined {
  // Only HTTP's optional whitespace (SP, HTAB) around the value: `trim()` would also drop a
  // NO-BREAK SPACE (0xA0, which Node keeps in a header value), admitting an invalid Host.
  let start = 0;
  let end = value.length;
  while (start < end && (value[start] === ' ' || value[start] === '\t')) start++;
  while (end > start && (value[end - 1] === ' ' || value[end - 1] === '\t')) end--;
  const v = value.slice(start, end).toLowerCase();
  let name: string;
  let rest: string;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 0) return undefined;
    name = v.slice(0, close + 1);
    rest = v.slice(close + 1);
    if (isIP(name.slice(1, -1)) !== 6) return undefined;
  } else {
    const colon = v.indexOf(':');
    name = colon < 0 ? v : v.slice(0, colon);
    rest = colon < 0 ? '' : v.slice(colon);
    if (!/^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/.test(name)) return undefined;
  }
  if (rest === '') return { name, port: defaultPort };
  const m = /^:(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[1]) : Number.NaN;
  if (!(port >= 1 && port <= 65_535)) return undefined;
  return { name, port };
}

/**
 * The Host allowlist (DNS-rebinding protection, MCP 2025-11-25 "Transports" §Security Warning),
 * port included: an entry `name` admits `name` on each of `ports`; an entry `name:port` admits
 * exactly that. With `anyIpLiteral`, any IP address literal is admitted on any port too (a
 * rebinding attack always carries the attacker's DNS name, never an IP literal): used by the
 * management listener, which Kubernetes probes and Prometheus reach by pod IP, and container
 * runtimes through a published port the process cannot know.
 */
export function createHostAllowlist(
  entries: readonly string[],
  ports: readonly number[],
  anyIpLiteral = false,
): (authority: Authority) => boolean {
  const allowed = new Set<string>();
  for (const entry of entries) {
    const explicit = /:\d{1,5}$/.test(entry) && (!entry.includes('[') || entry.includes(']:'));
    if (explicit) {
      const a = parseAuthority(entry, 0);
      if (a) allowed.add(`${a.name} ${a.port}`);
      continue;
    }
    const name = entry.trim().toLowerCase();
    for (const port of ports) allowed.add(`${name} ${port}`);
  }
  return (a) =>
    allowed.has(`${a.name} ${a.port}`) ||
    (anyIpLiteral && isIP(a.name.startsWith('[') ? a.name.slice(1, -1) : a.name) !== 0);
}

/**
 * A Host check for request headers: `allowed` applied to {@link parseAuthority} of `value`,
 * remembering up to `maxEntries` header values that were admitted (keyed with the default port),
 * so a client that sends the same `Host` on every request is parsed once. Refused values are
 * never remembered (a flood of junk `Host` headers cannot grow it), and the verdict is a pure
 * function of the value and the default port, so a remembered verdict equals a recomputed one.
 *
 * @param allowed - e.g. {@link createHostAllowlist}'s check
 * @param maxEntries - bound of the memory (entries); past it, values are checked without being remembered
 */
export function createHostCheck(
  allowed: (authority: Authority) => boolean,
  maxEntries = 64,
): (value: string, defaultPort: number) => boolean {
  const admitted = new Set<string>();
  return (value, defaultPort) => {
    const key = `${defaultPort} ${value}`;
    if (admitted.has(key)) return true;
    const authority = parseAuthority(value, defaultPort);
    if (!authority || !allowed(authority)) return false;
    if (admitted.size < maxEntries) admitted.add(key);
    return true;
  };
}

/**
 * The Origin check: configured origins exactly; when none are configured, loopback origins only
 * (a DNS-rebinding page has a foreign origin).
 */
export function createOriginCheck(configured: readonly string[] | undefined) {
  const allowed = configured ? new Set(configured.map((o) => new URL(o).origin)) : undefined;
  return (origin: string): boolean => {
    if (allowed) return allowed.has(origin);
    try {
      const u = new URL(origin);
      return (u.protocol === 'http:' || u.protocol === 'https:') && isLoopback(u.hostname);
    } catch {
      return false;
    }
  };
}

/** The client address, or the first `X-Forwarded-For` hop when the peer is a trusted proxy. */
export function peerAddress(req: IncomingMessage, trustedProxies: ReadonlySet<string>): string {
  const peer = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? 'unknown';
  if (!trustedProxies.has(peer)) return peer;
  const v = req.headers['x-forwarded-for'];
  const first = typeof v === 'string' ? v.split(',')[0]?.trim() : undefined;
  return first && isIP(first) !== 0 ? first : peer;
}

/** A forwarded header (`x-forwarded-host`, `x-forwarded-proto`), believed only from a trusted proxy. */
export function forwardedHeader(
  req: IncomingMessage,
  name: string,
  trustedProxies: ReadonlySet<string>,
): string | undefined {
  // No trusted proxy configured (the common case): nothing to look up per request.
  if (trustedProxies.size === 0) return undefined;
  const peer = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
  if (!trustedProxies.has(peer)) return undefined;
  const v = req.headers[name];
  return typeof v === 'string' ? v.split(',')[0]?.trim() : undefined;
}

/** `MCP-Protocol-Version`, when present, must be one the SDK supports → else 400. */
export function checkProtocolVersion(req: IncomingMessage): void {
  const version = req.headers['mcp-protocol-version'];
  if (
    version !== undefined &&
    (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))
  ) {
    throw new HttpRefusal(
      400,
      'bad_protocol_version',
      jsonRpcError(
        -32000,
        `Unsupported MCP-Protocol-Version; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
      ),
    );
  }
}

/** The media type of `Content-Type`, lower-case, without parameters. */
export function mediaType(req: IncomingMessage): string {
  return (
    String(req.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim()
      .toLowerCase() ?? ''
  );
}

/** The RFC 6750 §2.3 query parameter name, compared case-insensitively. */
const ACCESS_TOKEN_PARAM = 'access_token';

/** How many `access_token` parameters a query string or form body carries. */
export function accessTokenParams(encoded: string): number {
  let n = 0;
  for (const name of new URLSearchParams(encoded).keys())
    if (name.toLowerCase() === ACCESS_TOKEN_PARAM) n++;
  return n;
}

/**
 * How many `Host` header lines `req` has, whatever the spelling of the name. Node keeps only the
 * first in `req.headers.host`; RFC 9112 §3.2 requires refusing a request with more than one, so a
 * second (never checked) value cannot reach a component that reads another one.
 */
export function hostHeaderLines(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name !== undefined && name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

/**
 * Every `Authorization` header line of `req`, in order, whatever the spelling of its name: the
 * same list as `req.headersDistinct.authorization ?? []` (which Node builds from `rawHeaders` for
 * every header of the request on first use), read from `rawHeaders` directly.
 */
export function authorizationHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    if (name !== undefined && name.length === 13 && name.toLowerCase() === 'authorization')
      out.push(raw[i + 1] ?? '');
  }
  return out;
}

/**
 * Exactly one credential per request, checked before authentication (RFC 6750 §2, §3.1: a
 * request that "uses more than one method to include an access token" is `invalid_request`,
 * 400). Refused: two or more `Authorization` headers (any spelling of the name), one header
 * carrying a list of credentials, and any token in the query string or a form body (MCP
 * 2025-11-25 Authorization §"Token Requirements": never in the query string; only the header
 * is a supported method here, so a token there is either a second one or an unsupported one).
 *
 * @param formBody - the form-encoded body when the request has one (read by the caller, bounded)
 * @returns the single `Authorization` value, or undefined when none was sent
 * @throws HttpRefusal 400 `invalid_request` (with a `Bearer error="invalid_request"` challenge)
 */
export function singleCredential(
  req: IncomingMessage,
  formBody: string | undefined,
  challenge: (error: string, description: string) => string,
): string | undefined {
  const headers = authorizationHeaders(req);
  const url = req.url ?? '';
  const q = url.indexOf('?');
  // An empty query or form body has no parameters (URLSearchParams would find none).
  const elsewhere =
    (q >= 0 && q < url.length - 1 ? accessTokenParams(url.slice(q + 1)) : 0) +
    (formBody ? accessTokenParams(formBody) : 0);
  const listed = headers.some((h) => /,\s*\S/.test(h));
  if (headers.length > 1 || listed || elsewhere > 0) {
    const description =
      headers.length + elsewhere > 1 || listed
        ? 'send exactly one credential per request'
        : 'send the access token only in the Authorization header';
    throw new HttpRefusal(400, 'invalid_request', plainError('invalid_request', description), {
      'WWW-Authenticate': challenge('invalid_request', description),
    });
  }
  return headers[0];
}
