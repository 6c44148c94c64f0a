import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../audit-cli.js';
import { AuditLog } from './audit-log.js';
import { createCheckpointSigner, createCheckpointVerifier } from './checkpoint.js';
import { verifyAuditFile } from './hash-chain.js';
import { entry, line, parse, resign, tempDir } from './test-support/fixtures.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await tmp.cleanup();
});

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function run(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

for (const [alg, signKey, verifyKey, flag] of [
  ['hmac-sha256', 'k'.repeat(32), 'k'.repeat(32), '--hmac-key-file'],
  ['ed25519', privatePem, publicPem, '--public-key-file'],
] as const) {
  describe(`signed checkpoints (${alg})`, () => {
    async function writeLog(path: string, n: number): Promise<void> {
      const log = await AuditLog.open({
        sinks: { file: path },
        checkpoint: { every: 4, signer: createCheckpointSigner(alg, signKey, 'k1') },
      });
      for (let i = 0; i < n; i++) await log.record(entry(i));
      await log.close();
    }

    it('every N records and at shutdown; verify checks the signatures', async () => {
      const path = tmp.file('audit.jsonl');
      await writeLog(path, 10);
      const records = (await readFile(path, 'utf8')).trimEnd().split('\n').map(parse);
      const tools = records.map((r) => r.tool);
      // 4 calls, checkpoint, 4 calls, checkpoint, 2 calls, checkpoint at shutdown.
      expect(tools.filter((t) => t === 'audit:checkpoint')).toHaveLength(3);
      expect(tools.at(-1)).toBe('audit:checkpoint');
      expect(records[4]?.arguments).toMatchObject({
        alg,
        keyId: 'k1',
        seq: 3,
        hash: records[3]?.hash,
      });
      const verifier = createCheckpointVerifier(alg, verifyKey);
      expect(await verifyAuditFile(path, { checkpointVerifier: verifier })).toMatchObject({
        ok: true,
        records: 13,
        checkpoints: 3,
        afterLastCheckpoint: 0,
      });
      await writeFile(tmp.file('key'), verifyKey);
      const cli = await run(['verify', path, flag, tmp.file('key'), '--strict']);
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain('3 signed checkpoints verified');
    });

    it('a rewritten chain (re-hashed, re-linked) fails on the checkpoint signature', async () => {
      const path = tmp.file('audit.jsonl');
      await writeLog(path, 6);
      const records = (await readFile(path, 'utf8')).trimEnd().split('\n').map(parse);
      // The forger edits record 1 and recomputes every hash and link after it, checkpoints too.
      const forged: Record<string, unknown>[] = [];
      let prev = records[0]!.hash;
      forged.push(records[0]!);
      for (const [i, r] of records.slice(1).entries()) {
        let copy: Record<string, unknown> = { ...r, prevHash: prev };
        if (i === 0) copy.principal = 'forger';
        if (copy.tool === 'audit:checkpoint') {
          const before = forged.at(-1) as { seq: number; hash: string };
          copy.arguments = { ...(copy.arguments as object), seq: before.seq, hash: before.hash };
        }
        copy = resign(copy);
        forged.push(copy);
        prev = copy.hash as string;
      }
      await writeFile(path, `${forged.map((r) => line(r)).join('\n')}\n`);
      // Without the key the forgery is consistent…
      expect(await verifyAuditFile(path)).toMatchObject({ ok: true });
      // …with it, it is not.
      const verifier = createCheckpointVerifier(alg, verifyKey);
      expect(await verifyAuditFile(path, { checkpointVerifier: verifier })).toMatchObject({
        ok: false,
        code: 'bad_checkpoint',
      });
      await writeFile(tmp.file('key'), verifyKey);
      expect((await run(['verify', path, flag, tmp.file('key')])).code).toBe(1);
    });

    it('records cut after the last checkpoint are reported; --strict fails', async () => {
      const path = tmp.file('audit.jsonl');
      await writeLog(path, 6);
      const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
      // Cut the final checkpoint and one call: the end is no longer anchored.
      await writeFile(path, `${lines.slice(0, -2).join('\n')}\n`);
      await writeFile(tmp.file('key'), verifyKey);
      const lax = await run(['verify', path, flag, tmp.file('key')]);
      expect(lax.code).toBe(0);
      expect(lax.stderr).toContain('1 records after the last signed checkpoint');
      expect((await run(['verify', path, flag, tmp.file('key'), '--strict'])).code).toBe(1);
    });
  });
}
