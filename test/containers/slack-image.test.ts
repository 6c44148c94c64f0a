/**
 * The Slack server's container image (servers/slack/Dockerfile) through the shared image check
 * (image-check.ts), against the test kit's Slack fake. The connector allows `http:` upstreams
 * only on loopback, and the HTTP form reaches the host by a non-loopback address, so the fake
 * serves HTTPS here with a certificate made for the test (openssl) for 127.0.0.1 and the
 * host's address as containers see it; the container trusts it through `NODE_EXTRA_CA_CERTS`
 * and a read-only mount (set on the command line: a path, not a secret). The bot token is passed as `-e SLACK_BOT_TOKEN` (the value in podman's
 * environment only). Read-only mode: the token holds the read scopes only (the startup check
 * would refuse `chat:write` on a read-only server).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_SLACK_BOT_SCOPES, type SlackFake, startSlackFake } from '@hardened-mcp/test-kit';
import { expect } from 'vitest';
import { CONFIG_IN_CONTAINER, describeImageCheck, httpServiceConfig } from './image-check.ts';
import { HOST_LOOPBACK_FROM_CONTAINER, urlFromContainer } from './podman.ts';

const TOKEN = `xoxb-image-check-${process.pid}`;
const CA_IN_CONTAINER = '/etc/hardened-mcp/slack-fake-ca.pem';

interface Upstream {
  readonly fake: SlackFake;
  readonly cert: string;
}

/** A self-signed certificate for 127.0.0.1 and the host as containers reach it. */
function makeCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hmcp-slack-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=slack-fake',
        '-addext',
        `subjectAltName=IP:127.0.0.1,IP:${HOST_LOOPBACK_FROM_CONTAINER}`,
      ],
      { stdio: 'pipe' },
    );
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Mounts the test CA and points Node at it (a path, not a secret: set on the command line). */
function caFlags(caFile: string): string[] {
  return ['-v', `${caFile}:${CA_IN_CONTAINER}:ro`, '-e', `NODE_EXTRA_CA_CERTS=${CA_IN_CONTAINER}`];
}

/** The server's `slack:` section for an API URL. */
function slackConfig(apiUrl: string): string[] {
  return ['slack:', `  apiUrl: ${apiUrl}`, '  channels: { read: [C0SUPPORT1, C0INCIDNT1] }'];
}

describeImageCheck<Upstream>({
  server: 'slack',
  describes: 'Slack',
  tools: ['slack_get_user', 'slack_list_channels', 'slack_read_history', 'slack_read_thread'],
  env: { SLACK_BOT_TOKEN: TOKEN },
  credentialEnv: /^SLACK_/,
  start: async () => {
    const tls = makeCertificate();
    const fake = await startSlackFake({
      tls,
      tokens: [
        {
          token: TOKEN,
          scopes: FAKE_SLACK_BOT_SCOPES.filter((s) => s !== 'chat:write'),
          kind: 'bot',
        },
      ],
    });
    return { fake, cert: tls.cert };
  },
  stop: async ({ fake }) => fake.stop(),
  // Host networking: the container reaches the fake on 127.0.0.1.
  stdio: async ({ fake, cert }, files) => {
    const config = files.config('config.yaml', `${slackConfig(fake.url).join('\n')}\n`);
    const ca = files.config('ca.pem', cert);
    return {
      flags: [...caFlags(ca), '-v', `${config}:${CONFIG_IN_CONTAINER}:ro`],
    };
  },
  http: async ({ fake, cert }, files, apiKeySha256, publishedPort) => {
    const principal = 'image-check';
    const config = files.config(
      'config-http.yaml',
      `${[
        ...slackConfig(urlFromContainer(fake.url)),
        ...httpServiceConfig(apiKeySha256, principal, publishedPort),
      ].join('\n')}\n`,
    );
    const ca = files.config('ca-http.pem', cert);
    return {
      principal,
      flags: [...caFlags(ca), '-v', `${config}:${CONFIG_IN_CONTAINER}:ro`],
    };
  },
  // The support thread: a customer's e-mail and phone, and a token pasted in a reply.
  readCall: {
    name: 'slack_read_thread',
    arguments: { channel: 'C0SUPPORT1', ts: '1760000000.000100' },
    verify: (r) => {
      const thread = r.structuredContent as { messages: { author: string; text: string }[] };
      expect(thread.messages.map((m) => m.author)).toContain('maria');
      const text = JSON.stringify(thread);
      expect(text).toContain('[REDACTED:email]');
      expect(text).toContain('[REDACTED:phone]');
      expect(text).toContain('[REDACTED:github_token]');
    },
    pii: /maria\.jensen@example\.com|\+45 20 12 34 56|ghp_R8x2Lq9TzV4mW7nK3pY6sD1fH5jB0cA2eG4i/,
    redactions: { email: 1, phone: 1, github_token: 1 },
  },
});
