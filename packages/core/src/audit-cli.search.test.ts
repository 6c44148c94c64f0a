/**
 * `hardened-mcp-audit search` and `export`: filters, formats, and memory that does not grow with
 * the file: the bin runs on generated files of N and 4N MB (64 and 256 by default; with
 * `HMCP_AUDIT_BIG_MB=1024` 256 MB and 1 GB) and the peak RSS of the larger must stay within 32 MB
 * of the smaller's (peak RSS is printed, never a timing).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from './audit/audit-log.js';
import { AUDIT_CSV_COLUMNS } from './audit/audit-query.js';
import { verifyAuditChain } from './audit/hash-chain.js';
import { entry, parse, tempDir } from './audit/test-support/fixtures.js';
import { main } from './audit-cli.js';

const BIN = fileURLToPath(new URL('./audit-bin.ts', import.meta.url));

let tmp: Awaited<ReturnType<typeof tempDir>>;
let file: string;
beforeAll(async () => {
  tmp = await tempDir();
  file = tmp.file('audit.jsonl');
  const log = await AuditLog.open({ sinks: { file } });
  for (let i = 0; i < 12; i++) {
    await log.record(
      entry(i, {
        principal: i % 3 === 0 ? 'alice' : 'bob',
        tool: i % 2 === 0 ? 'postgres_query' : 'postgres_list_tables',
        decision: i % 4 === 0 ? { result: 'denied', reason: 'forbidden' } : { result: 'allowed' },
        outcome: i % 4 === 0 ? 'denied' : 'success',
        session: { mcpSessionId: i < 6 ? 'sess-a' : 'sess-b', requestId: i, intent: 'ticket 7' },
        arguments: { sql: i === 5 ? '=HYPERLINK("http://x")' : `select ${i}` },
      }),
    );
  }
  await log.close();
});
afterAll(async () => {
  await tmp.cleanup();
});

async function run(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

describe('search', () => {
  it('filters by principal, tool, decision and session; lines come out verbatim', async () => {
    const all = (await readFile(file, 'utf8')).trimEnd().split('\n');
    const r = await run(['search', file, '--principal', 'alice', '--decision', 'denied']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => parse(l).seq)).toEqual([0]);
    expect(lines.every((l) => all.includes(l))).toBe(true);
    expect(r.stderr).toBe('1 of 12 records matched\n');

    const bySession = await run([
      'search',
      file,
      '--session',
      'sess-b',
      '--tool',
      'postgres_query',
    ]);
    expect(
      bySession.stdout
        .trimEnd()
        .split('\n')
        .map((l) => parse(l).seq),
    ).toEqual([6, 8, 10]);
    // A contiguous range of a chain still verifies link by link.
    const range = await run(['search', file, '--session', 'sess-a']);
    const head = range.stdout.trimEnd().split('\n');
    expect(head).toEqual(all.slice(0, 6));
    expect(await verifyAuditChain(head)).toMatchObject({ ok: true, records: 6 });
  });

  it('filters by time: --since inclusive, --until exclusive', async () => {
    const records = (await readFile(file, 'utf8')).trimEnd().split('\n').map(parse);
    const t = records[4]!.time;
    const since = await run(['search', file, '--since', t]);
    expect(
      since.stdout
        .trimEnd()
        .split('\n')
        .map((l) => parse(l).time >= t),
    ).not.toContain(false);
    const until = await run(['search', file, '--until', t]);
    const before = until.stdout === '' ? [] : until.stdout.trimEnd().split('\n');
    expect(before.every((l) => parse(l).time < t)).toBe(true);
    const none = await run(['search', file, '--since', '2999-01-01']);
    expect(none).toMatchObject({ code: 0, stdout: '', stderr: '0 of 12 records matched\n' });
  });

  it.each([
    [['search', 'f', '--decision', 'maybe'], '--decision must be allowed or denied'],
    [['search', 'f', '--since', 'yesterday'], '--since is not an ISO 8601 time'],
    [['search', 'f', '--format', 'csv'], 'search takes no --format'],
    [['export', 'f'], 'export needs --format jsonl or --format csv'],
    [['export', 'f', '--format', 'xml'], 'export needs --format jsonl or --format csv'],
    [['verify', 'f', '--tool', 'x'], 'verify takes no --tool'],
  ])('exits 2 on usage error %j', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('exits 2 for a missing file', async () => {
    const r = await run(['search', tmp.file('nope.jsonl')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ENOENT');
  });
});

describe('export', () => {
  it('jsonl is the same as search', async () => {
    const a = await run(['export', file, '--format', 'jsonl', '--principal', 'bob']);
    const b = await run(['search', file, '--principal', 'bob']);
    expect(a.stdout).toBe(b.stdout);
  });

  it('csv has a header and one parseable row per record, formulas neutralized', async () => {
    const r = await run(['export', file, '--format', 'csv']);
    expect(r.code).toBe(0);
    const rows = parseCsv(r.stdout) as string[][];
    expect(rows[0]).toEqual([...AUDIT_CSV_COLUMNS]);
    expect(rows).toHaveLength(13);
    const col = (name: (typeof AUDIT_CSV_COLUMNS)[number]) => AUDIT_CSV_COLUMNS.indexOf(name);
    const row5 = rows[6]!;
    expect(row5[col('seq')]).toBe('5');
    expect(row5[col('mcpSessionId')]).toBe('sess-a');
    expect(row5[col('intent')]).toBe('ticket 7');
    expect(JSON.parse(row5[col('arguments')]!)).toEqual({ sql: '=HYPERLINK("http://x")' });
    expect(rows[1]![col('decision')]).toBe('denied');
    expect(rows[1]![col('reason')]).toBe('forbidden');
  });
});

describe('bounded memory on a large file', () => {
  // Node runs the .ts source with type stripping; this hook maps `.js` import suffixes to `.ts`,
  // and prints the process's peak RSS (VmHWM, in KB) at exit. The bin passes its exec arguments
  // on to the child that runs the CLI, so both the launcher and the CLI child print theirs.
  const hook = `data:text/javascript,${encodeURIComponent(
    'import { registerHooks } from "node:module";' +
      'registerHooks({ resolve(s, c, next) { try { return next(s, c); } catch (e) {' +
      ' if (s.startsWith(".") && s.endsWith(".js")) return next(s.slice(0, -3) + ".ts", c);' +
      ' throw e; } } });' +
      'process.on("exit", () => process.stderr.write("maxRSS_KB=" + process.resourceUsage().maxRSS + "\\n"));',
  )}`;
  /** Size N of the smaller file; the larger is 4N (HMCP_AUDIT_BIG_MB=256 makes it 1 GB). */
  const smallMb = Number(process.env.HMCP_AUDIT_BIG_MB ?? 256) / 4;
  /** Allowed growth of peak RSS from N to 4N (memory, not time: it does not depend on load). */
  const MARGIN_KB = 32 * 1024;

  /** Writes `mb` MB of records repeated from the 12-record file; every 1000th block is a needle. */
  async function generate(path: string, mb: number) {
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    const block = `${lines.join('\n')}\n`;
    const needle = `${lines[0]!.replace('"principal":"alice"', '"principal":"needle"')}\n`;
    const out = createWriteStream(path);
    let written = 0;
    let blocks = 0;
    while (written < mb * 1024 * 1024) {
      const chunk = blocks % 1000 === 0 ? needle : block;
      if (!out.write(chunk)) await once(out, 'drain');
      written += Buffer.byteLength(chunk);
      blocks += 1;
    }
    out.end();
    await once(out, 'finish');
    const needles = Math.ceil(blocks / 1000);
    return { needles, records: needles + (blocks - needles) * lines.length, bytes: written };
  }

  /** Runs the bin (no heap flags of ours: its own apply) and returns the highest peak RSS printed. */
  async function runBin(args: string[], stdoutPath: string) {
    const sink = await open(stdoutPath, 'w');
    const child = spawn(process.execPath, ['--no-warnings', '--import', hook, BIN, ...args], {
      stdio: ['ignore', sink.fd, 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const [code] = (await once(child, 'exit')) as [number];
    await sink.close();
    const peaks = [...stderr.matchAll(/maxRSS_KB=(\d+)/g)].map((m) => Number(m[1]));
    // Launcher and CLI child: both must have reported.
    expect(peaks, stderr).toHaveLength(2);
    return { code, stderr, rssKb: Math.max(...peaks) };
  }

  it(
    `peak RSS of search and csv export does not grow from ${smallMb} MB to ${4 * smallMb} MB of file`,
    async () => {
      const sizes = [smallMb, 4 * smallMb];
      const results: { mb: number; search: number; csv: number }[] = [];
      for (const mb of sizes) {
        const big = tmp.file(`big-${mb}.jsonl`);
        const g = await generate(big, mb);
        const search = await runBin(['search', big, '--principal', 'needle'], tmp.file('s.out'));
        expect(search.code, search.stderr).toBe(0);
        expect(search.stderr).toContain(`${g.needles} of ${g.records} records matched`);
        expect((await readFile(tmp.file('s.out'), 'utf8')).trimEnd().split('\n')).toHaveLength(
          g.needles,
        );
        const csv = await runBin(['export', big, '--format', 'csv'], tmp.file('c.csv'));
        expect(csv.code, csv.stderr).toBe(0);
        expect(csv.stderr).toContain(`${g.records} of ${g.records} records matched`);
        expect((await stat(tmp.file('c.csv'))).size).toBeGreaterThan(g.records * 100);
        await rm(big);
        results.push({ mb, search: search.rssKb, csv: csv.rssKb });
      }
      const tiny = await runBin(['export', file, '--format', 'csv'], tmp.file('small.csv'));
      const mbOf = (kb: number) => (kb / 1024).toFixed(0);
      process.stderr.write(
        `hardened-mcp-audit peak RSS (highest of launcher and CLI child): 12-record file ${mbOf(tiny.rssKb)} MB; ${results
          .map((r) => `${r.mb} MB file: search ${mbOf(r.search)} MB, csv export ${mbOf(r.csv)} MB`)
          .join('; ')}\n`,
      );
      const [n, n4] = results as [(typeof results)[0], (typeof results)[0]];
      expect(n4.search - n.search).toBeLessThan(MARGIN_KB);
      expect(n4.csv - n.csv).toBeLessThan(MARGIN_KB);
    },
    Math.max(600_000, smallMb * 5 * 4_000),
  );
});
