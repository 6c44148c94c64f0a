import { z } from 'zod';
import { StartupError } from './errors.js';
import { annotationsFor, type CredentialScope, type Tool, type ToolAnnotations } from './tool.js';

/** A tool as listed to clients (MCP `Tool`). */
export interface ListedTool {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly inputSchema: Readonly<Record<string, unknown>>;
  readonly outputSchema?: Readonly<Record<string, unknown>> | undefined;
  readonly annotations: ToolAnnotations;
}

/** Output schema of `table` tools (MCP structured content). */
export const TABLE_OUTPUT_SCHEMA = Object.freeze({
  type: 'object',
  properties: {
    columns: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string' }, type: { type: 'string' } },
        required: ['name', 'type'],
      },
    },
    rows: { type: 'array', items: { type: 'array' } },
    rowCount: { type: 'integer', minimum: 0 },
    truncated: { type: 'boolean' },
  },
  required: ['columns', 'rows', 'rowCount', 'truncated'],
});

/** What decides which declared tools are enabled. */
export interface ToolRegistryOptions {
  readonly mode: 'read-only' | 'read-write';
  /** `tools.allow` from configuration; undefined = all declared tools. */
  readonly allow?: readonly string[] | undefined;
  /** Names under `tools.settings` (each must be a declared tool). */
  readonly configured?: readonly string[] | undefined;
  /** Which credential scopes have an upstream client. */
  readonly scopes: ReadonlySet<CredentialScope>;
}

/** The enabled tools, looked up by name, and their listing (computed once). */
export interface ToolRegistry<C> {
  get(name: string): Tool<C> | undefined;
  readonly listed: readonly ListedTool[];
  readonly names: readonly string[];
}

const TOOL_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/;

function inputJsonSchema(tool: Tool<unknown>): Record<string, unknown> {
  return z.toJSONSchema(tool.input as z.ZodType, {
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
}

/**
 * Checks every declaration and decides enablement: a write tool exists only in `read-write`
 * mode with a write client; `tools.allow` narrows further.
 *
 * @throws Error when a declaration is inconsistent (a duplicate name, a name not shaped
 *   `<connector>_<verb>_<noun>`, a credential that is not the tool's access, no scopes, a
 *   non-strict input schema, a bearer field on a non-JSON tool): a connector bug.
 * @throws StartupError when `tools.allow` or `tools.settings` names a tool no connector
 *   declares (a typo would otherwise be silently ignored).
 */
export function createToolRegistry<C>(
  tools: readonly Tool<C>[],
  options: ToolRegistryOptions,
): ToolRegistry<C> {
  const declared = new Map<string, Tool<C>>();
  for (const tool of tools) {
    if (declared.has(tool.name)) throw new Error(`duplicate tool ${tool.name}`);
    if (!TOOL_NAME.test(tool.name))
      throw new Error(`tool name ${tool.name} is not <connector>_<verb>[_<noun>]`);
    if (tool.credential !== tool.access)
      throw new Error(`tool ${tool.name} must run with the ${tool.access} credential`);
    if (tool.scopes.length === 0) throw new Error(`tool ${tool.name} declares no scopes`);
    if (tool.bearerField !== undefined && tool.output !== 'json')
      throw new Error(`tool ${tool.name} declares a bearer field but no json output`);
    const schema = inputJsonSchema(tool);
    if (schema.type !== 'object' || schema.additionalProperties !== false)
      throw new Error(
        `tool ${tool.name} must declare a strict object input schema (z.strictObject)`,
      );
    declared.set(tool.name, tool);
  }
  const unknown = [...(options.allow ?? []), ...(options.configured ?? [])].filter(
    (name) => !declared.has(name),
  );
  if (unknown.length > 0)
    throw new StartupError(
      `tools.allow/tools.settings name tools that do not exist: ${[...new Set(unknown)].join(', ')} (declared: ${[...declared.keys()].join(', ')})`,
    );
  const allow = options.allow ? new Set(options.allow) : undefined;
  const enabled = new Map<string, Tool<C>>();
  for (const tool of declared.values()) {
    if (allow && !allow.has(tool.name)) continue;
    if (tool.access === 'write' && options.mode !== 'read-write') continue;
    if (!options.scopes.has(tool.credential)) continue;
    enabled.set(tool.name, tool);
  }
  const listed = Object.freeze(
    [...enabled.values()].map((tool) =>
      Object.freeze({
        name: tool.name,
        title: tool.title,
        description: tool.description,
        inputSchema: inputJsonSchema(tool),
        outputSchema: tool.output === 'table' ? TABLE_OUTPUT_SCHEMA : undefined,
        annotations: annotationsFor(tool),
      }),
    ),
  );
  return Object.freeze({
    get: (name: string) => enabled.get(name),
    listed,
    names: Object.freeze([...enabled.keys()]),
  });
}
