/**
 * What the package entry loads at startup (issue 14): modules only HTTP serving needs are
 * loaded on first use, never by `import '@hardened-mcp/core'` (which every stdio server pays).
 * The graph is the one Node follows from the compiled files: every static `import … from` and
 * `export … from` of a relative module, except `import type` / `export type` statements (the only
 * ones the compiler erases under `verbatimModuleSyntax`); a dynamic `import()` is not followed.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = dirname(fileURLToPath(import.meta.url));

/** A statement-initial `import`/`export` … `from '<spec>'` (group 1: `type ` when type-only). */
const STATIC_IMPORT = /^(?:import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm;

/** The repository-relative source files statically reachable from `entry` at run time. */
function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(join(SRC, file), 'utf8');
    for (const m of source.matchAll(STATIC_IMPORT)) {
      const [, type, spec] = m;
      if (type || spec === undefined || !spec.startsWith('.')) continue;
      visit(resolve(SRC, dirname(file), spec.replace(/\.js$/, '.ts')).slice(SRC.length + 1));
    }
  };
  visit(entry);
  return seen;
}

describe('the package entry at startup', () => {
  const graph = staticGraph('index.ts');

  it('follows the graph (sanity: what stdio needs is there)', () => {
    for (const f of ['assemble.ts', 'cli.ts', 'mcp-server.ts', 'pipeline.ts', 'config.ts'])
      expect(graph).toContain(f);
  });

  it('does not load the HTTP server module (serveHttp loads it on first use)', () => {
    expect(graph).not.toContain('http/http-server.ts');
    expect(graph).toContain('serve-http.ts');
  });
});

/**
 * The bare package specifiers statically reached from `entry` over the same graph (type-only
 * statements excluded; dynamic `import()` is the lazy path and is not followed).
 */
function staticPackages(entry: string): Set<string> {
  const packages = new Set<string>();
  for (const file of staticGraph(entry)) {
    for (const [, type, spec] of readFileSync(join(SRC, file), 'utf8').matchAll(STATIC_IMPORT)) {
      if (type || spec === undefined || spec.startsWith('.') || spec.startsWith('node:')) continue;
      packages.add(spec);
    }
  }
  return packages;
}

describe('the packages the entry loads at startup', () => {
  const packages = [...staticPackages('index.ts')];

  it('follows the graph (sanity: the SDK and zod are reached)', () => {
    expect(packages).toContain('zod');
    expect(packages.some((p) => p.startsWith('@modelcontextprotocol/sdk/'))).toBe(true);
  });

  it.each([
    'prom-client',
    '@cedar-policy/cedar-wasm',
    'yaml',
    'jose',
    'openid-client',
    '@peculiar/x509',
    '@aws-sdk/client-secrets-manager',
    '@modelcontextprotocol/sdk/server/streamableHttp.js',
    'csv-stringify',
    'glossy',
  ])('does not load %s (loaded on first use only)', (name) => {
    expect(packages.filter((p) => p === name || p.startsWith(`${name}/`))).toEqual([]);
  });
});
