/**
 * The example server's container image (servers/example/Dockerfile) through the shared image
 * check (image-check.ts). Its upstream is an in-memory note store seeded inside the server, so
 * the image needs nothing beside it: the full check with no upstream to start. Its read token is
 * passed as `-e EXAMPLE_READ_TOKEN` (the value in podman's environment only); the default
 * configuration (the `demo` seed, folders `general` and `support`) serves the stdio form, and the
 * HTTP form adds only the core's HTTP service settings.
 */
import { expect } from 'vitest';
import { CONFIG_IN_CONTAINER, describeImageCheck, httpServiceConfig } from './image-check.ts';

describeImageCheck<Record<string, never>>({
  server: 'example',
  describes: 'note store',
  tools: ['example_get_note', 'example_list_folders', 'example_list_notes'],
  // Any value of 8+ characters (the in-memory store stands in for an upstream that checks it).
  env: { EXAMPLE_READ_TOKEN: `read-token-${process.pid}-image-check` },
  credentialEnv: /^EXAMPLE_.*TOKEN$/,
  start: async () => ({}),
  stop: async () => {},
  stdio: async (_upstream, files) => {
    // The defaults, written out: the demo seed holds the PII the read call must not reveal.
    const config = files.config('config.yaml', 'example:\n  seed: demo\n');
    return { flags: ['-v', `${config}:${CONFIG_IN_CONTAINER}:ro`] };
  },
  http: async (_upstream, files, apiKeySha256, publishedPort) => {
    const principal = 'image-check';
    const config = files.config(
      'config-http.yaml',
      `${['example:', '  seed: demo', ...httpServiceConfig(apiKeySha256, principal, publishedPort)].join('\n')}\n`,
    );
    return { principal, flags: ['-v', `${config}:${CONFIG_IN_CONTAINER}:ro`] };
  },
  // A seeded note whose body holds an e-mail address, a phone number and a card number.
  readCall: {
    name: 'example_get_note',
    arguments: { id: 'n-0002' },
    verify: (r) => {
      const note = r.structuredContent as { id: string; folder: string; body: string };
      expect(note.id).toBe('n-0002');
      expect(note.body).toContain('Maria Jensen');
      expect(note.body).toContain('[REDACTED:email]');
      expect(note.body).toContain('[REDACTED:phone]');
      expect(note.body).toContain('[REDACTED:card_number]');
    },
    pii: /maria\.jensen@example\.com|555 0134|4111 1111 1111 1111/,
    redactions: { email: 1, phone: 1, card_number: 1 },
  },
});
