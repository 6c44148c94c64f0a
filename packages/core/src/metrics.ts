import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import type { AuditEntry, RemoteSinkStats } from './audit/index.js';

/** What the audit metrics read at each scrape. */
export interface AuditMetricsSource {
  /** False while the audit trail refuses records (see `AuditLog.healthy`). */
  healthy(): boolean;
  /** Delivery state of each remote sink. */
  remotes(): readonly RemoteSinkStats[];
}

/** Most distinct principals labelled in `hmcp_denials_by_principal_total`; later ones are `other`. */
export const MAX_PRINCIPAL_LABELS = 1000;

/** Prometheus metrics of one server process (`prom-client`, a private registry). */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Feeds one audited call into the counters. */
  observeCall(entry: AuditEntry): void;
  /** Sets the number of live MCP sessions. */
  setActiveSessions(n: number): void;
  /** Counts an HTTP request refused before the pipeline (by reason, e.g. `bad_origin`, `unauthenticated`). */
  observeHttpRefusal(reason: string): void;
  /** Registers the audit trail's gauges and counters, read at each scrape. Call once. */
  observeAudit(source: AuditMetricsSource): void;
  /** Counts a failed audit sink operation (`file`, `stderr`, or a remote sink's name). */
  observeAuditSinkError(sink: string): void;
  /** Records the outcome of a readiness probe (1 ready, 0 not). */
  setReady(ready: boolean): void;
}

/**
 * Creates the metrics: `hmcp_tool_calls_total{tool,outcome}`, `hmcp_tool_call_duration_seconds{tool}`,
 * `hmcp_denials_total{reason}`, `hmcp_redactions_total{type}`, `hmcp_rate_limited_total{tool}`,
 * `hmcp_active_sessions`, `hmcp_http_refusals_total{reason}`, `hmcp_denials_by_principal_total{principal}`,
 * `hmcp_approvals_total{result}`, `hmcp_classified_calls_total{label,tool,result}`, `hmcp_audit_sink_errors_total{sink}`, `hmcp_ready`, and after
 * {@link ServerMetrics.observeAudit}: `hmcp_audit_healthy`, `hmcp_audit_spool_bytes{sink}`,
 * `hmcp_audit_delivery_lag_seconds{sink}`, `hmcp_audit_delivery_failures_total{sink}`,
 * `hmcp_audit_records_delivered_total{sink}`, `hmcp_audit_records_dropped_total{sink}`; plus
 * Node process metrics.
 * Tool names are bounded by the connector's tool list (unknown names are counted as `unknown`).
 */
export function createServerMetrics(knownTools: readonly string[]): ServerMetrics {
  // prom-client (and its default collectors) is loaded at the metrics' first use, not at
  // startup: over stdio nothing scrapes them before the first call (startup cost, issue 14).
  let real: ServerMetrics | undefined;
  let auditSource: AuditMetricsSource | undefined;
  const load = (): ServerMetrics => {
    if (real === undefined) {
      real = createPromMetrics(knownTools);
      if (auditSource !== undefined) real.observeAudit(auditSource);
    }
    return real;
  };
  return {
    get registry() {
      return load().registry;
    },
    observeCall: (entry) => load().observeCall(entry),
    setActiveSessions: (n) => load().setActiveSessions(n),
    observeHttpRefusal: (reason) => load().observeHttpRefusal(reason),
    observeAudit(source) {
      if (real === undefined) auditSource = source;
      else real.observeAudit(source);
    },
    observeAuditSinkError: (sink) => load().observeAuditSinkError(sink),
    setReady: (ready) => load().setReady(ready),
  };
}

const lazyRequire = createRequire(import.meta.url);

/** {@link createServerMetrics} proper: loads prom-client and creates every metric. */
function createPromMetrics(knownTools: readonly string[]): ServerMetrics {
  const { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } = lazyRequire(
    'prom-client',
  ) as typeof import('prom-client');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hmcp_' });
  const tools = new Set(knownTools);
  const calls = new Counter({
    name: 'hmcp_tool_calls_total',
    help: 'Tool calls by tool and outcome',
    labelNames: ['tool', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'hmcp_tool_call_duration_seconds',
    help: 'Tool call latency through the whole pipeline',
    labelNames: ['tool'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const denials = new Counter({
    name: 'hmcp_denials_total',
    help: 'Refused tool calls by reason code',
    labelNames: ['reason'],
    registers: [registry],
  });
  const redactions = new Counter({
    name: 'hmcp_redactions_total',
    help: 'Redacted values by type',
    labelNames: ['type'],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'hmcp_rate_limited_total',
    help: 'Calls refused by the rate limiter',
    labelNames: ['tool'],
    registers: [registry],
  });
  const sessions = new Gauge({
    name: 'hmcp_active_sessions',
    help: 'Live MCP sessions',
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'hmcp_http_refusals_total',
    help: 'HTTP requests refused before the pipeline',
    labelNames: ['reason'],
    registers: [registry],
  });
  const principals = new Set<string>();
  const deniedBy = new Counter({
    name: 'hmcp_denials_by_principal_total',
    help: `Refused tool calls by principal (the first ${MAX_PRINCIPAL_LABELS} principals; others as "other")`,
    labelNames: ['principal'],
    registers: [registry],
  });
  const classified = new Counter({
    name: 'hmcp_classified_calls_total',
    help: 'Calls touching confidential or restricted data, by label, tool and decision',
    labelNames: ['label', 'tool', 'result'],
    registers: [registry],
  });
  const approvals = new Counter({
    name: 'hmcp_approvals_total',
    help: 'Human approval outcomes of write calls (approved, declined, cancelled, unavailable)',
    labelNames: ['result'],
    registers: [registry],
  });
  const auditSinkErrors = new Counter({
    name: 'hmcp_audit_sink_errors_total',
    help: 'Failed audit sink operations by sink',
    labelNames: ['sink'],
    registers: [registry],
  });
  const ready = new Gauge({
    name: 'hmcp_ready',
    help: 'Outcome of the last readiness probe (1 ready, 0 not)',
    registers: [registry],
  });
  return {
    registry,
    observeAudit(source) {
      new Gauge({
        name: 'hmcp_audit_healthy',
        help: 'Whether the audit trail accepts records (1) or calls fail closed (0)',
        registers: [registry],
        collect() {
          this.set(source.healthy() ? 1 : 0);
        },
      });
      const perSink = (
        name: string,
        help: string,
        pick: (s: RemoteSinkStats) => number,
        counter: boolean,
      ) =>
        new Gauge({
          name,
          help: counter ? `${help} (a counter, since start)` : help,
          labelNames: ['sink'],
          registers: [registry],
          collect() {
            for (const stats of source.remotes()) this.set({ sink: stats.name }, pick(stats));
          },
        });
      perSink(
        'hmcp_audit_spool_bytes',
        'Audit bytes spooled for a remote sink, not yet delivered',
        (s) => s.spoolBytes,
        false,
      );
      perSink(
        'hmcp_audit_delivery_lag_seconds',
        'Age of the oldest audit record not yet delivered to a remote sink',
        (s) => s.lagSeconds,
        false,
      );
      perSink(
        'hmcp_audit_delivery_failures_total',
        'Failed deliveries to a remote audit sink',
        (s) => s.failures,
        true,
      );
      perSink(
        'hmcp_audit_records_delivered_total',
        'Audit records delivered to a remote sink',
        (s) => s.delivered,
        true,
      );
      perSink(
        'hmcp_audit_records_dropped_total',
        'Audit records dropped for a best-effort remote sink (spool full)',
        (s) => s.dropped,
        true,
      );
    },
    observeAuditSinkError: (sink) => auditSinkErrors.inc({ sink }),
    setReady: (r) => ready.set(r ? 1 : 0),
    observeCall(entry) {
      const tool = tools.has(entry.tool) ? entry.tool : 'unknown';
      calls.inc({ tool, outcome: entry.outcome });
      duration.observe({ tool }, entry.durationMs / 1000);
      if (entry.decision.result === 'denied') {
        denials.inc({ reason: entry.decision.reason ?? 'unknown' });
        if (principals.size < MAX_PRINCIPAL_LABELS) principals.add(entry.principal);
        deniedBy.inc({ principal: principals.has(entry.principal) ? entry.principal : 'other' });
      }
      const approval = entry.decision.approval;
      if (approval && approval !== 'not_required') approvals.inc({ result: approval });
      if (entry.decision.reason === 'rate_limited') rateLimited.inc({ tool });
      for (const [type, n] of Object.entries(entry.redactions)) redactions.inc({ type }, n);
      const label = entry.classification?.label;
      if (label === 'confidential' || label === 'restricted')
        classified.inc({ label, tool, result: entry.decision.result });
    },
    setActiveSessions: (n) => sessions.set(n),
    observeHttpRefusal: (reason) => refusals.inc({ reason }),
  };
}
