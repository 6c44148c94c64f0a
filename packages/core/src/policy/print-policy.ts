import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { configuredApproval } from '../approval.js';
import type { ConnectorConfig } from '../assemble.js';
import type { CredentialSource } from '../config.js';
import type { ConnectorContext, ConnectorDefinition, LabelledPath } from '../connector.js';
import { createLogger } from '../logger.js';
import { createRedactor } from '../redaction/index.js';
import { type CredentialScope, secretRegistry, type Tool } from '../tool.js';
import { createToolRegistry } from '../tool-registry.js';
import { createPolicyEngine } from './cedar-engine.js';
import { generateCedarSchema } from './cedar-schema.js';

/** One tool in the printed policy. */
export interface PrintedTool {
  readonly name: string;
  readonly access: 'read' | 'write';
  /** Enabled in this configuration (mode, `tools.allow`, credentials present). */
  readonly enabled: boolean;
  /** Why a declared tool is not enabled. */
  readonly disabledBecause?: string | undefined;
  readonly scopes: readonly string[];
  /** Roles whose scopes cover the tool's. */
  readonly roles: readonly string[];
  /** Sends data out (refused or approved once the session is tainted). */
  readonly egress: boolean;
  /** Cedar resource type. */
  readonly resourceType: string;
  /**
   * `required` (a human approves each call), or `none`; reads: `none` unless configured
   * `approval: required` (restricted data asks too, per call).
   */
  readonly approval: 'required' | 'none';
  readonly rateLimit: { readonly points: number; readonly durationSeconds: number };
}

/** The effective access-control policy of a configuration (see {@link effectivePolicy}). */
export interface EffectivePolicy {
  readonly server: { readonly name: string; readonly version: string };
  readonly mode: 'read-only' | 'read-write';
  readonly transport: 'stdio' | 'http';
  readonly authentication: Readonly<Record<string, unknown>>;
  readonly tools: readonly PrintedTool[];
  readonly roles: Readonly<Record<string, readonly string[]>>;
  readonly stdioIdentity: Readonly<Record<string, unknown>>;
  /** The connector's own section (allowlists and limits), as configured. */
  readonly connector: unknown;
  readonly classification: unknown;
  /** What the connector says each configured label key means (absent when it does not say). */
  readonly labelledPaths?: readonly LabelledPath[] | undefined;
  readonly policies: readonly {
    readonly id: string;
    readonly file: string;
    readonly effect: string;
    readonly approvable: boolean;
    readonly text: string;
  }[];
  readonly caps: { readonly maxRows: number; readonly maxBytes: number };
  readonly rateLimit: { readonly points: number; readonly durationSeconds: number };
  /** Where each credential comes from (never a value). */
  readonly credentials: Readonly<Record<string, string>>;
  readonly audit: Readonly<Record<string, unknown>>;
}

/** A credential source described without its value. */
export function describeCredentialSource(source: CredentialSource | undefined): string {
  if (!source) return 'none';
  if ('env' in source) return `environment variable ${source.env}`;
  if ('file' in source) return `file ${source.file}`;
  return `AWS Secrets Manager ${source.secretsManager.secretId}${source.secretsManager.jsonKey ? ` (key ${source.secretsManager.jsonKey})` : ''}`;
}

/** Whether a credential source can give a value now (environment variable set, file present). */
function sourcePresent(source: CredentialSource | undefined, env: NodeJS.ProcessEnv): boolean {
  if (!source) return false;
  if ('env' in source) return (env[source.env] ?? '') !== '';
  if ('file' in source) return existsSync(source.file);
  return true;
}

/**
 * Computes the effective policy of a configuration without starting the server: the connector's
 * tools are declared (from configuration alone, no upstream client) and enabled exactly as the
 * pipeline enables them ({@link createToolRegistry}); Cedar policies are loaded and validated.
 * Credential sources are named, never read.
 *
 * @throws StartupError when the configuration would not start (e.g. an invalid policy file)
 */
export async function effectivePolicy<S, C>(
  def: ConnectorDefinition<S, C>,
  config: ConnectorConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<EffectivePolicy> {
  const redactor = createRedactor({
    pii: config.output.redaction.pii,
    keyRules: config.output.redaction.keyRules,
  });
  const logger = createLogger('silent', redactor, new Writable({ write: (_c, _e, cb) => cb() }));
  const ctx: ConnectorContext<S> = {
    config,
    settings: config[def.name] as S,
    flags: {},
    logger,
    secrets: secretRegistry(redactor),
    redactor,
  };
  const declared = await def.tools(ctx);
  try {
    const tools = declared.tools as readonly Tool<unknown>[];
    const managed = def.credentialSource === 'connector';
    const sources = {
      read: config.credentials.read ?? def.defaultCredentials.read,
      write: config.credentials.write ?? def.defaultCredentials.write,
    };
    const scopes = new Set<CredentialScope>(['read']);
    if (config.mode === 'read-write' && (managed || sourcePresent(sources.write, env)))
      scopes.add('write');
    const registry = createToolRegistry(tools, {
      mode: config.mode,
      allow: config.tools.allow,
      configured: Object.keys(config.tools.settings),
      scopes,
    });
    const enabled = new Set(registry.names);
    const roles: Record<string, readonly string[]> = {
      reader: [`${def.name}:read`],
      writer: [`${def.name}:read`, `${def.name}:write`],
      ...config.roles,
    };
    const engine =
      config.policies.files.length > 0
        ? await createPolicyEngine({
            files: config.policies.files,
            schema: generateCedarSchema(tools),
          })
        : undefined;
    const printedTools: PrintedTool[] = tools.map((t) => {
      const disabledBecause = enabled.has(t.name)
        ? undefined
        : config.tools.allow && !config.tools.allow.includes(t.name)
          ? 'not in tools.allow'
          : t.access === 'write' && config.mode !== 'read-write'
            ? 'mode is read-only'
            : 'no write credential';
      const settings = config.tools.settings[t.name];
      return {
        name: t.name,
        access: t.access,
        enabled: enabled.has(t.name),
        ...(disabledBecause ? { disabledBecause } : {}),
        scopes: [...t.scopes],
        roles: Object.entries(roles)
          .filter(([, s]) => t.scopes.every((needed) => s.includes(needed)))
          .map(([r]) => r),
        egress: t.egress === true,
        resourceType: t.resource?.type ?? 'Server',
        approval: configuredApproval(t.access, settings?.approval) ? 'required' : 'none',
        rateLimit: settings?.rateLimit ?? config.rateLimit,
      };
    });
    const credentials: Record<string, string> = managed
      ? {
          read: 'obtained by the connector (e.g. the AWS SDK chain)',
          write: 'obtained by the connector',
        }
      : {
          read: describeCredentialSource(sources.read),
          write: describeCredentialSource(sources.write),
        };
    credentials.redis = describeCredentialSource(config.redis.url);
    const auth = config.auth;
    return {
      server: { name: def.bin, version: def.version },
      mode: config.mode,
      transport: config.transport,
      authentication: {
        mode: auth.mode,
        ...(auth.oauth
          ? {
              issuer: auth.oauth.issuer,
              audience: auth.oauth.audience,
              algorithms: auth.oauth.algorithms,
              scopeRoles: auth.oauth.scopeRoles,
            }
          : {}),
        apiKeys: auth.apiKeys.map((k) => ({
          id: k.id,
          principal: k.principal,
          roles: k.roles,
          scopes: k.scopes,
          expiresAt: k.expiresAt,
        })),
      },
      tools: printedTools,
      roles,
      stdioIdentity: { ...config.identity, defaultRoles: config.defaultRoles },
      connector: redactor.redactValue(config[def.name] ?? {}, {}),
      classification: config.classification,
      ...(declared.labelledPaths ? { labelledPaths: [...declared.labelledPaths] } : {}),
      policies: (engine?.policies ?? []).map((p) => ({ ...p })),
      caps: { maxRows: config.output.maxRows, maxBytes: config.output.maxBytes },
      rateLimit: config.rateLimit,
      credentials,
      audit: {
        file: config.audit.file,
        stderr: config.audit.stderr,
        remote: config.audit.remote.map((r) => ({ name: r.name, type: r.type, mode: r.mode })),
        checkpoint: config.audit.checkpoint
          ? { every: config.audit.checkpoint.every, algorithm: config.audit.checkpoint.algorithm }
          : undefined,
      },
    };
  } finally {
    await declared.close?.();
  }
}

const cell = (v: unknown) => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The effective policy as a Markdown document an auditor can read. */
export function policyToMarkdown(p: EffectivePolicy): string {
  const lines: string[] = [];
  lines.push(`# Access-control policy: ${p.server.name} ${p.server.version}`, '');
  lines.push(
    `- Mode: ${p.mode}; transport: ${p.transport}; authentication: ${String(p.authentication.mode)}`,
  );
  lines.push(`- Output caps per call: ${p.caps.maxRows} rows, ${p.caps.maxBytes} bytes`);
  lines.push(
    `- Default rate limit: ${p.rateLimit.points} calls per ${p.rateLimit.durationSeconds} s per principal and tool`,
    '',
  );
  lines.push('## Tools', '');
  lines.push(
    '| tool | access | enabled | scopes | roles | approval | egress | resource | rate limit |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const t of p.tools)
    lines.push(
      `| ${t.name} | ${t.access} | ${t.enabled ? 'yes' : `no (${t.disabledBecause})`} | ${t.scopes.join(', ')} | ${t.roles.join(', ') || '—'} | ${t.approval} | ${t.egress ? 'yes' : 'no'} | ${t.resourceType} | ${t.rateLimit.points}/${t.rateLimit.durationSeconds}s |`,
    );
  lines.push('', '## Roles', '', '| role | scopes |', '| --- | --- |');
  for (const [r, s] of Object.entries(p.roles)) lines.push(`| ${r} | ${s.join(', ')} |`);
  lines.push(
    '',
    '## Authentication',
    '',
    '```json',
    JSON.stringify(p.authentication, null, 2),
    '```',
  );
  lines.push(
    '',
    '## stdio identity',
    '',
    '```json',
    JSON.stringify(p.stdioIdentity, null, 2),
    '```',
  );
  lines.push(
    '',
    '## Connector allowlists and limits',
    '',
    '```json',
    JSON.stringify(p.connector, null, 2),
    '```',
  );
  lines.push(
    '',
    '## Classification',
    '',
    '```json',
    JSON.stringify(p.classification, null, 2),
    '```',
  );
  if (p.labelledPaths && p.labelledPaths.length > 0) {
    lines.push('', '| label key | label | labels |', '| --- | --- | --- |');
    for (const l of p.labelledPaths)
      lines.push(`| ${cell(l.path)} | ${l.label} | ${cell(l.means)} |`);
  }
  lines.push('', '## Cedar policies', '');
  if (p.policies.length === 0) lines.push('None configured: scopes and allowlists decide.');
  for (const pol of p.policies)
    lines.push(
      `### ${cell(pol.id)} (${pol.effect}${pol.approvable ? ', approval lifts it' : ''}; ${cell(pol.file)})`,
      '',
      '```cedar',
      pol.text,
      '```',
      '',
    );
  lines.push(
    '',
    '## Credential sources (never values)',
    '',
    '| credential | source |',
    '| --- | --- |',
  );
  for (const [k, v] of Object.entries(p.credentials)) lines.push(`| ${k} | ${cell(v)} |`);
  lines.push('', '## Audit', '', '```json', JSON.stringify(p.audit, null, 2), '```', '');
  return lines.join('\n');
}
