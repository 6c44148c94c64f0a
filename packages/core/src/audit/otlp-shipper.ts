/**
 * The OTLP shipper: audit records as OpenTelemetry log records over OTLP/HTTP (protobuf),
 * through the official `@opentelemetry/exporter-logs-otlp-proto` exporter.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { AuditShipper } from './remote-sink.js';

const lazyRequire = createRequire(import.meta.url);

/** Options of {@link createOtlpLogsShipper}. */
export interface OtlpLogsShipperOptions {
  /** The OTLP/HTTP logs endpoint, e.g. `https://collector:4318/v1/logs`. */
  readonly url: string;
  /** Extra request headers (e.g. an authorization header); values are never logged. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** PEM CA bundle to trust for `https:` (default: the system store). */
  readonly ca?: string | Buffer | undefined;
  /** `service.name` resource attribute (default `hardened-mcp`). */
  readonly serviceName?: string | undefined;
  /** Request timeout, ms (default 10 000). */
  readonly timeoutMs?: number | undefined;
}

/** Instrumentation scope of the shipped log records. */
export const AUDIT_OTLP_SCOPE = { name: 'hardened-mcp.audit', version: '1' } as const;

/**
 * Creates a shipper that exports each batch as one OTLP `ExportLogsServiceRequest`. Each log
 * record: `body` = the full audit line (so `seq`, `prevHash`, `hash` are kept and the chain can
 * be verified on the receiving side), timestamp = the record's `time`, severity INFO (WARN for
 * denials and errors), `event.name` `hardened_mcp.audit`, and attributes `audit.seq`,
 * `audit.hash`, `audit.principal`, `audit.tool`, `audit.decision` for indexing.
 * `send` resolves when the collector answered with success (OTLP/HTTP spec: a 2xx; the
 * exporter retries 429/502/503/504 within its timeout) and rejects otherwise.
 */
export function createOtlpLogsShipper(options: OtlpLogsShipperOptions): AuditShipper {
  // The OpenTelemetry packages are loaded only when an OTLP sink is configured (startup cost,
  // issue 14); their CommonJS builds load synchronously.
  const { SeverityNumber } = lazyRequire(
    '@opentelemetry/api-logs',
  ) as typeof import('@opentelemetry/api-logs');
  const { OTLPLogExporter } = lazyRequire(
    '@opentelemetry/exporter-logs-otlp-proto',
  ) as typeof import('@opentelemetry/exporter-logs-otlp-proto');
  const { resourceFromAttributes } = lazyRequire(
    '@opentelemetry/resources',
  ) as typeof import('@opentelemetry/resources');
  const exporter = new OTLPLogExporter({
    url: options.url,
    headers: { ...options.headers },
    timeoutMillis: options.timeoutMs ?? 10_000,
    ...(options.ca ? { httpAgentOptions: { ca: options.ca } } : {}),
  });
  const resource = resourceFromAttributes({
    'service.name': options.serviceName ?? 'hardened-mcp',
  });
  return {
    send(lines) {
      const records: ReadableLogRecord[] = lines.map((line) => {
        const r = JSON.parse(line) as {
          time: string;
          seq: number;
          hash: string;
          principal: string;
          tool: string;
          outcome: string;
          decision?: { result?: string };
        };
        const ms = Date.parse(r.time);
        const hr: [number, number] = [Math.floor(ms / 1000), (ms % 1000) * 1e6];
        const ok = r.outcome === 'success';
        return {
          hrTime: hr,
          hrTimeObserved: hr,
          severityNumber: ok ? SeverityNumber.INFO : SeverityNumber.WARN,
          severityText: ok ? 'INFO' : 'WARN',
          body: line,
          eventName: 'hardened_mcp.audit',
          resource,
          instrumentationScope: AUDIT_OTLP_SCOPE,
          attributes: {
            'audit.seq': r.seq,
            'audit.hash': r.hash,
            'audit.principal': r.principal,
            'audit.tool': r.tool,
            'audit.decision': r.decision?.result ?? '',
          },
          droppedAttributesCount: 0,
        };
      });
      return new Promise<void>((resolve, reject) => {
        exporter.export(records, (result) => {
          // ExportResultCode.SUCCESS is 0.
          if (result.code === 0) resolve();
          else reject(result.error ?? new Error('OTLP export failed'));
        });
      });
    },
    close: () => exporter.shutdown(),
  };
}
