import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditEntry } from './audit/index.js';

/** Prometheus metrics of one server process (`prom-client`, a private registry). */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Feeds one audited call into the counters. */
  observeCall(entry: AuditEntry): void;
  /** Sets the number of live MCP sessions. */
  setActiveSessions(n: number): void;
  /** Counts an HTTP request refused before the pipeline (by reason, e.g. `bad_origin`, `unauthenticated`). */
  observeHttpRefusal(reason: string): void;
}

/**
 * Creates the metrics: `hmcp_tool_calls_total{tool,outcome}`, `hmcp_tool_call_duration_seconds{tool}`,
 * `hmcp_denials_total{reason}`, `hmcp_redactions_total{type}`, `hmcp_rate_limited_total{tool}`,
 * `hmcp_active_sessions`, `hmcp_http_refusals_total{reason}`, plus Node process metrics.
 * Tool names are bounded by the connector's tool list (unknown names are counted as `unknown`).
 */
export function createServerMetrics(knownTools: readonly string[]): ServerMetrics {
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
  return {
    registry,
    observeCall(entry) {
      const tool = tools.has(entry.tool) ? entry.tool : 'unknown';
      calls.inc({ tool, outcome: entry.outcome });
      duration.observe({ tool }, entry.durationMs / 1000);
      if (entry.decision.result === 'denied')
        denials.inc({ reason: entry.decision.reason ?? 'unknown' });
      if (entry.decision.reason === 'rate_limited') rateLimited.inc({ tool });
      for (const [type, n] of Object.entries(entry.redactions)) redactions.inc({ type }, n);
    },
    setActiveSessions: (n) => sessions.set(n),
    observeHttpRefusal: (reason) => refusals.inc({ reason }),
  };
}
