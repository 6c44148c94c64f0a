/**
 * Every server's Dockerfile is the one shared shape (the container issue: "a shared Dockerfile
 * shape, not diverging ones"): the files may differ only in their build-command comment and the
 * defaults of `ARG SERVER` and `ARG DESCRIPTION`. Needs no podman.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../support/server.ts';

const servers = readdirSync(join(REPO_ROOT, 'servers'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

/** The Dockerfile with its per-server lines blanked. */
function shape(server: string): string {
  return readFileSync(join(REPO_ROOT, 'servers', server, 'Dockerfile'), 'utf8')
    .split('\n')
    .map((line) =>
      /^ARG (SERVER|DESCRIPTION)=/.test(line) ||
      /docker build -f servers\/[a-z0-9-]+\/Dockerfile/.test(line)
        ? '<per-server>'
        : line,
    )
    .join('\n');
}

it('every server has a Dockerfile of the shared shape', () => {
  expect(servers.length).toBeGreaterThanOrEqual(2);
  const [first, ...rest] = servers;
  for (const server of rest)
    expect(shape(server), `servers/${server}/Dockerfile`).toBe(shape(first ?? ''));
});

it.each(servers)('servers/%s/Dockerfile builds its own server', (server) => {
  expect(readFileSync(join(REPO_ROOT, 'servers', server, 'Dockerfile'), 'utf8')).toContain(
    `ARG SERVER=${server}\n`,
  );
});
