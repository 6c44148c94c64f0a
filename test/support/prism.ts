/**
 * `@stoplight/prism-cli` in proxy mode in front of a stateful fake: every request our connector
 * sends and every answer the fake gives is validated against an official API description
 * (`../shared/specs/*.prism.json`; see its README). With `--errors`, a request the description
 * rejects is answered 422 and logged as a violation.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { repoRoot } from '@hardened-mcp/test-kit';

/** Node 24 from the root devDependency when installed (prism 5.16 needs Node >= 24.18). */
const NODE = existsSync(join(repoRoot, 'node_modules', 'node', 'bin', 'node'))
  ? join(repoRoot, 'node_modules', 'node', 'bin', 'node')
  : process.execPath;
const PRISM = join(
  dirname(createRequire(import.meta.url).resolve('@stoplight/prism-cli/package.json')),
  'dist',
  'index.js',
);

/** A running prism proxy. */
export interface PrismProxy {
  /** `http://127.0.0.1:PORT` of the proxy. */
  readonly url: string;
  /** Everything prism wrote so far (stdout and stderr). */
  log(): string;
  /** The log lines that report a violation of the description. */
  violations(): string[];
  stop(): void;
}

/**
 * Starts `prism proxy SPEC UPSTREAM --errors` on a free port (three attempts, 150 s each: the
 * description is large and prism parses it at start) and resolves once it listens.
 *
 * @param spec - path of the API description
 * @param upstream - base URL of the fake the proxy forwards to
 * @throws Error when prism does not start (with the tail of its log)
 */
export async function startPrismProxy(spec: string, upstream: string): Promise<PrismProxy> {
  let log = '';
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    log = '';
    const child: ChildProcess = spawn(
      NODE,
      [PRISM, 'proxy', spec, upstream, '-h', '127.0.0.1', '-p', String(port), '--errors'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString('utf8');
    });
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString('utf8');
    });
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (log.includes('Prism is listening'))
        return {
          url: `http://127.0.0.1:${port}`,
          log: () => log,
          violations: () => log.split('\n').filter((l) => /✖|Violation|UNPROCESSABLE/.test(l)),
          stop: () => child.kill(),
        };
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill();
  }
  throw new Error(`prism did not start: ${log.slice(-500)}`);
}
