/** The `audit` section of the configuration: durability, file changes, remote sinks, checkpoints. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineConfigSchema, parseConfig } from './config.js';
import { StartupError } from './errors.js';

const schema = defineConfigSchema('test', z.strictObject({}).prefault({}));
const audit = (raw: unknown) => parseConfig(schema, { audit: raw }).audit;
const problems = (raw: unknown): string => {
  try {
    audit(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(StartupError);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('audit configuration', () => {
  it('defaults: group commit, stay closed, no remote sinks, no checkpoints', () => {
    expect(audit({})).toEqual({
      stderr: true,
      durability: 'group',
      groupCommitWindowMs: 0,
      onFileChange: 'stay_closed',
      remote: [],
    });
  });

  it('fills each remote sink type with its defaults', () => {
    const parsed = audit({
      file: '/var/log/a.jsonl',
      remote: [
        {
          type: 'https-json',
          name: 'splunk',
          shape: 'splunk-hec',
          url: 'https://s:8088/x',
          token: { env: 'T' },
        },
        { type: 'syslog-tls', name: 'sys', host: 'syslog.internal' },
        {
          type: 'otlp-http',
          name: 'otel',
          url: 'http://collector:4318/v1/logs',
          mode: 'best-effort',
        },
      ],
      checkpoint: { algorithm: 'ed25519', key: { file: '/run/k.pem' }, keyId: 'k-2026' },
    });
    expect(parsed.remote).toMatchObject([
      { type: 'https-json', mode: 'required', spoolMaxBytes: 64 * 1024 * 1024 },
      { type: 'syslog-tls', port: 6514, mode: 'required' },
      { type: 'otlp-http', mode: 'best-effort' },
    ]);
    expect(parsed.checkpoint).toEqual({
      every: 1000,
      algorithm: 'ed25519',
      key: { file: '/run/k.pem' },
      keyId: 'k-2026',
    });
  });

  it.each([
    [{ durability: 'maybe' }, 'audit.durability'],
    [{ groupCommitWindowMs: 500 }, 'audit.groupCommitWindowMs'],
    [{ onFileChange: 'ignore' }, 'audit.onFileChange'],
    [
      {
        file: '/a',
        remote: [{ type: 'https-json', name: 'x', shape: 'splunk-hec', url: 'http://plain/x' }],
      },
      'audit.remote.0.url',
    ],
    [{ file: '/a', remote: [{ type: 'kafka', name: 'x' }] }, 'audit.remote.0.type'],
    [
      { file: '/a', remote: [{ type: 'syslog-tls', name: 'x', host: 'h', bogus: 1 }] },
      'audit.remote.0: unknown key',
    ],
    [
      {
        file: '/a',
        remote: [
          { type: 'syslog-tls', name: 'dup', host: 'a' },
          { type: 'syslog-tls', name: 'dup', host: 'b' },
        ],
      },
      'audit.remote.1.name: duplicate name',
    ],
    [
      { remote: [{ type: 'syslog-tls', name: 's', host: 'a' }] },
      'audit.spoolDir: remote sinks need a spool',
    ],
    [
      { checkpoint: { algorithm: 'rsa', key: { env: 'K' }, keyId: 'k' } },
      'audit.checkpoint.algorithm',
    ],
    [
      { checkpoint: { algorithm: 'hmac-sha256', key: { env: 'K' }, keyId: 'has space' } },
      'audit.checkpoint.keyId',
    ],
  ])('refuses %j', (raw, message) => {
    expect(problems(raw)).toContain(message);
  });
});
