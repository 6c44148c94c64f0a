/**
 * The S3 server started the way its `local` pod starts it, without a cluster: the configuration
 * file from the rendered ConfigMap, `AWS_SHARED_CREDENTIALS_FILE` from the Deployment naming a
 * shared credentials file of the mode the Secret volume gives it (0440) with the Secret's format,
 * the built bin on Node 24. Replaced: the ports (free ones), the file's path and keys, and the
 * store's endpoint (the local S3-compatible store, fauxqs, instead of the in-cluster one). Then:
 * `/healthz` and `/readyz` (a list of the allowlisted prefix with those keys) answer 200, and an
 * MCP client on loopback reads an object of the allowlisted bucket.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  type RecordingProxy,
  startRecordingProxy,
  startTestStore,
  type TestStore,
} from '../s3/support.ts';
import { connectHttpClient, rawRequest } from '../support/http.ts';
import { REPO_ROOT, writeTempConfig } from '../support/server.ts';
import { type KubeObject, kustomizeBuild, podContainers, podSpec } from './kustomize.ts';

const S3_BIN = join(REPO_ROOT, 'servers', 's3', 'dist', 'bin.js');
const work = mkdtempSync(join(tmpdir(), 'hmcp-k8s-s3-'));
let store: TestStore;
let proxy: RecordingProxy;

beforeAll(async () => {
  store = await startTestStore();
  proxy = await startRecordingProxy(store.endpoint);
});

afterAll(async () => {
  await proxy?.stop();
  await store?.stop();
  rmSync(work, { recursive: true, force: true });
});

type S3PodConfig = Record<string, unknown> & {
  s3: { endpoint?: string; buckets: { name: string; prefixes: string[] }[] };
  http: { port: number; management: { port: number } };
};

/** Spawns the S3 bin with a config file and resolves with its MCP and management URLs once it listens. */
async function startS3Http(config: S3PodConfig, env: Record<string, string>) {
  const child = spawn(process.execPath, [S3_BIN, '--config', writeTempConfig(config)], {
    env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${stderr}`)), 30_000);
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{') || !line.includes(' listening on ')) continue;
        try {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // a partial line
        }
      }
    });
    void exited.then((code) => reject(new Error(`exited (${code}) before listening:\n${stderr}`)));
  });
  return {
    url: /listening on (\S+)/.exec(String(listening.msg))?.[1] ?? '',
    management: String(listening.management),
    stdout: () => stdout,
    async stop(): Promise<number | null> {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('s3 pod configuration', () => {
  it('local: the shared credentials file from the Secret, probes answer, a client reads an object', async () => {
    const objects = kustomizeBuild(
      join(REPO_ROOT, 'servers', 's3', 'deploy', 'kubernetes', 'overlays', 'local'),
    );
    const cm = objects.find((o) => o.kind === 'ConfigMap') as KubeObject;
    const config = parseYaml(
      String((cm.data as Record<string, string>)['config.yaml']),
    ) as S3PodConfig;
    const deployment = objects.find((o) => o.kind === 'Deployment') as KubeObject;
    const env = (podContainers(deployment)[0]?.env ?? []) as { name: string; value?: string }[];
    expect(env.map((e) => e.name)).toContain('AWS_SHARED_CREDENTIALS_FILE');
    const volumes = (podSpec(deployment)?.volumes ?? []) as { secret?: { defaultMode?: number } }[];
    const mode = Number(volumes.find((v) => v.secret)?.secret?.defaultMode);
    expect(mode).toBe(0o440);
    const secret = objects.find((o) => o.kind === 'Secret') as KubeObject;
    const template = String((secret.stringData as Record<string, string>).credentials);
    expect(template).toMatch(/^\[default\]\naws_access_key_id = .+\naws_secret_access_key = .+\n$/);

    const credentials = join(work, 'credentials');
    writeFileSync(
      credentials,
      template
        .replace(/(aws_access_key_id = ).+/, '$1test-k8s-key')
        .replace(/(aws_secret_access_key = ).+/, '$1test-k8s-secret'),
    );
    chmodSync(credentials, mode);
    const bucket = config.s3.buckets[0];
    if (!bucket) throw new Error('no bucket in the local configuration');
    await store.createBucket(bucket.name);
    await store.put(bucket.name, `${bucket.prefixes[0]}q1.txt`, 'revenue up 12%', 'text/plain');
    config.s3.endpoint = proxy.endpoint;
    config.http.port = 0;
    config.http.management.port = 0;

    const server = await startS3Http(config, {
      AWS_SHARED_CREDENTIALS_FILE: credentials,
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    try {
      const management = new URL(server.management);
      const probe = (path: string) =>
        rawRequest(`http://127.0.0.1:${management.port}${path}`).then((r) => r.status);
      expect(await probe('/healthz')).toBe(200);
      expect(await probe('/readyz')).toBe(200);
      const { client } = await connectHttpClient(server.url);
      try {
        const r = await client.callTool({
          name: 's3_get_object',
          arguments: { bucket: bucket.name, key: `${bucket.prefixes[0]}q1.txt` },
        });
        expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
        expect(JSON.stringify(r.content)).toContain('revenue up 12%');
        // Every request the server sent was signed with the key from the mounted file.
        expect(proxy.requests.length).toBeGreaterThan(0);
        expect(new Set(proxy.requests.map((q) => q.accessKeyId))).toEqual(
          new Set(['test-k8s-key']),
        );
      } finally {
        await client.close();
      }
      expect(server.stdout()).toBe('');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
