/**
 * The HTTPS JSON shipper: Splunk HTTP Event Collector and Elasticsearch `_bulk` request shapes.
 *
 * @module
 */
import { request } from 'node:https';
import type { AuditShipper } from './remote-sink.js';

/**
 * Request shape.
 * - `splunk-hec`: `POST` of concatenated `{"time":<epoch s>,"sourcetype":…,"event":<record>}`
 *   objects with `Authorization: Splunk <token>` (Splunk docs, "Format events for HTTP Event
 *   Collector"); success is HTTP 200.
 * - `elasticsearch-bulk`: NDJSON of `{"create":{"_index":…,"_id":<auditId>}}` + the record
 *   (Elasticsearch "Bulk API"); `Authorization: ApiKey <key>`. Success is HTTP 200 with
 *   `errors: false`, or every failed item a 409 (already indexed: a redelivery after a lost ack,
 *   made idempotent by `_id` = `auditId`).
 */
export type HttpsJsonShape = 'splunk-hec' | 'elasticsearch-bulk';

/** Options of {@link createHttpsJsonShipper}. */
export interface HttpsJsonShipperOptions {
  /** `https:` URL of the collector (e.g. `…/services/collector/event` or `…/_bulk`). */
  readonly url: string;
  readonly shape: HttpsJsonShape;
  /** HEC token or Elasticsearch API key; sent in `Authorization`, never logged. */
  readonly token?: string | undefined;
  /** Elasticsearch index (default `hardened-mcp-audit`); Splunk `sourcetype` is fixed. */
  readonly index?: string | undefined;
  /** PEM CA bundle to trust (default: the system store). */
  readonly ca?: string | Buffer | undefined;
  /** Request timeout, ms (default 10 000). */
  readonly timeoutMs?: number | undefined;
}

/** Error of a failed delivery: the HTTP status only (never the body, which may echo data). */
export class AuditShipError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'AuditShipError';
    this.status = status;
  }
}

/**
 * Creates a shipper posting batches to a Splunk HEC or Elasticsearch bulk endpoint over HTTPS
 * (TLS certificate verification always on). Each shipped record is the full audit line, so
 * `seq`, `prevHash` and `hash` reach the SIEM and the chain can be verified there.
 *
 * @throws TypeError if `url` is not `https:`.
 */
export function createHttpsJsonShipper(options: HttpsJsonShipperOptions): AuditShipper {
  const url = new URL(options.url);
  if (url.protocol !== 'https:') throw new TypeError('audit HTTPS sink: url must be https:');
  const index = options.index ?? 'hardened-mcp-audit';
  return {
    async send(lines) {
      let body: string;
      let contentType: string;
      let auth: string | undefined;
      if (options.shape === 'splunk-hec') {
        body = lines
          .map((l) => {
            const time = Date.parse((JSON.parse(l) as { time: string }).time) / 1000;
            return `{"time":${time},"sourcetype":"hardened-mcp:audit","event":${l}}`;
          })
          .join('\n');
        contentType = 'application/json';
        auth = options.token ? `Splunk ${options.token}` : undefined;
      } else {
        body = `${lines
          .map((l) => {
            const id = (JSON.parse(l) as { auditId: string }).auditId;
            return `${JSON.stringify({ create: { _index: index, _id: id } })}\n${l}`;
          })
          .join('\n')}\n`;
        contentType = 'application/x-ndjson';
        auth = options.token ? `ApiKey ${options.token}` : undefined;
      }
      const { status, text } = await post(url, body, contentType, auth, options);
      if (status < 200 || status > 299) {
        throw new AuditShipError(`audit HTTPS sink: HTTP ${status}`, status);
      }
      if (options.shape === 'elasticsearch-bulk') checkBulk(text);
    },
  };
}

function checkBulk(text: string): void {
  let parsed: { errors?: boolean; items?: Array<Record<string, { status?: number }>> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new AuditShipError('audit HTTPS sink: bulk response is not JSON');
  }
  if (parsed.errors !== true) return;
  const bad = (parsed.items ?? []).filter((item) => {
    const status = Object.values(item)[0]?.status ?? 500;
    return status !== 409 && (status < 200 || status > 299);
  });
  if (bad.length > 0) {
    throw new AuditShipError(`audit HTTPS sink: ${bad.length} bulk items refused`);
  }
}

function post(
  url: URL,
  body: string,
  contentType: string,
  auth: string | undefined,
  options: HttpsJsonShipperOptions,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': contentType,
          'content-length': Buffer.byteLength(body),
          ...(auth ? { authorization: auth } : {}),
        },
        ca: options.ca,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 1024 * 1024) chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new AuditShipError('audit HTTPS sink: timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
