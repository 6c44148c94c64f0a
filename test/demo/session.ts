/**
 * What the demos share when they start a server: a fresh audit file and a human at the client
 * who is shown every approval prompt and approves it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { indent } from './ui.ts';

/**
 * A path `<new temp dir>/audit.jsonl` for one demo's audit trail; the directory is created, the
 * file is left for the server to create. `name` goes into the directory name
 * (`hmcp-demo-<name>-XXXXXX`) so a reader can tell the demos' trails apart.
 */
export function demoAuditFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), `hmcp-demo-${name}-`)), 'audit.jsonl');
}

/**
 * Plays the human at the client: every elicitation (the server's approval prompt, MCP
 * 2025-06-18 "Elicitation") is printed and accepted with `{ approve: true }`. The client must
 * have been created with the `elicitation` capability.
 */
export function approveEveryPrompt(client: Client): void {
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    console.log(indent(`[approval prompt]\n${req.params.message}\n[the human approves]`));
    return { action: 'accept', content: { approve: true } };
  });
}
