/**
 * What the in-process Jira tests share once a server is assembled: calling a tool through its
 * pipeline as one HTTP principal, reading its audit file back, and the stable error code of an
 * answer. Test-only (left out of the build).
 */
import { readFileSync } from 'node:fs';
import type { ApprovalChannel, AssembledServer, CallResponse } from '@hardened-mcp/core';

/**
 * A caller of `server`'s pipeline as principal `ana` (role `writer`, HTTP transport), with the
 * given approval channel; the MCP session id defaults to `defaultSession` (the session taint is
 * kept per session).
 */
export function pipelineCaller(
  server: AssembledServer,
  approval: ApprovalChannel,
  defaultSession: string,
): (name: string, args: unknown, mcpSessionId?: string) => Promise<CallResponse> {
  return (name, args, mcpSessionId = defaultSession) =>
    server.pipeline.callTool({
      name,
      arguments: args,
      identity: { principal: 'ana', roles: ['writer'], transport: 'http', client: {} },
      approval,
      signal: new AbortController().signal,
      origin: { mcpSessionId },
    });
}

/** The tool-call audit records of a JSON Lines audit file, in order (other records skipped). */
export function toolAuditRecords(auditFile: string): Record<string, unknown>[] {
  return readFileSync(auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => typeof r.tool === 'string');
}

/** An answer's stable error code (`_meta['hardened-mcp/error'].code`), `ok` for a success. */
export function errorCode(r: CallResponse): string {
  return r.kind === 'result'
    ? ((r.result._meta?.['hardened-mcp/error'] as { code?: string } | undefined)?.code ?? 'ok')
    : 'unknown';
}
