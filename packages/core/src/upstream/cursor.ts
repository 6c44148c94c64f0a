/**
 * Sealed pagination cursors: opaque to the client, confidential and integrity-protected with
 * AES-256-GCM (NIST SP 800-38D, via `node:crypto`), bound to the tool, the resource and the
 * principal they were issued for, and valid until an expiry.
 *
 * A cursor is `base64url(version ‖ IV (12 bytes) ‖ tag (16 bytes) ‖ ciphertext)`. The plaintext
 * is JSON `{ e: expiresAtMs, s: state }`; the binding (tool, principal, resource) is the AEAD's
 * additional authenticated data, so a cursor presented for another tool, resource or principal
 * fails authentication exactly like a forged one. IVs are random (96 bits): at most 2^32 seals
 * per key keep the collision risk within SP 800-38D §8.3; a server issues far fewer.
 *
 * The key is either random per process (cursors die with the process) or derived with HKDF-SHA256
 * (RFC 5869) from a configured secret (cursors survive a restart and work across replicas that
 * share the secret).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { CredentialHandle, Secret } from '../credentials.js';
import { StartupError } from '../errors.js';

/** What a cursor is bound to. All three must match when it is opened. */
export interface CursorBinding {
  /** The tool that issued it, e.g. `s3_list_objects`. */
  readonly tool: string;
  /** The principal it was issued to (`identity.principal`). */
  readonly principal: string;
  /** The resource listed: e.g. `[bucket, prefix]`, a Jira project key, a Slack channel id. */
  readonly resource: string | readonly string[];
}

/** Why {@link CursorSealer.open} refused a cursor. */
export type CursorRefusal =
  /** Not a cursor of this server, or of another tool, resource or principal, or tampered with. */
  | 'invalid'
  /** A genuine cursor past its expiry. */
  | 'expired';

/** The result of {@link CursorSealer.open}. */
export type OpenedCursor<T> =
  | { readonly ok: true; readonly state: T }
  | { readonly ok: false; readonly reason: CursorRefusal };

/** Options of {@link CursorSealer}. */
export interface CursorSealerOptions {
  /**
   * The key material. Absent: a random 256-bit key for this process. A {@link Secret}: at least
   * 32 characters (e.g. 32 random bytes in base64), from which the key is derived with HKDF-SHA256.
   */
  readonly secret?: Secret | undefined;
  /** How long a cursor stays valid. Default 3 600 000 ms (one hour). */
  readonly ttlMs?: number | undefined;
  /** Clock in ms since the epoch (tests). Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Cursors longer than this (characters) are refused before decoding. */
const MAX_CURSOR_CHARS = 16_384;
const HKDF_INFO = 'hardened-mcp pagination cursor v1';
const MIN_SECRET_CHARS = 32;

/**
 * Seals and opens pagination cursors. One instance per server (or per connector); cursors are
 * valid only for the instance's key.
 */
export class CursorSealer {
  readonly #key: Buffer;
  readonly #ttlMs: number;
  readonly #now: () => number;

  /**
   * @throws StartupError when `secret` is shorter than 32 characters or `ttlMs` is not positive.
   */
  constructor(options: CursorSealerOptions = {}) {
    const ttlMs = options.ttlMs ?? 3_600_000;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new StartupError('cursor ttlMs must be > 0');
    this.#ttlMs = ttlMs;
    this.#now = options.now ?? Date.now;
    if (options.secret) {
      const material = options.secret.reveal();
      if (material.length < MIN_SECRET_CHARS)
        throw new StartupError(
          `the cursor key (${options.secret.source}) must have at least ${MIN_SECRET_CHARS} characters`,
        );
      this.#key = Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), HKDF_INFO, 32));
    } else {
      this.#key = randomBytes(32);
    }
  }

  /**
   * A sealer keyed from a configured credential when there is one (cursors survive restarts and
   * work across replicas), otherwise with a random per-process key.
   */
  static from(
    credential: CredentialHandle | undefined,
    options: Omit<CursorSealerOptions, 'secret'> = {},
  ): CursorSealer {
    return new CursorSealer({ ...options, secret: credential?.current() });
  }

  /**
   * Seals `state` (any JSON value) for `binding`. The result is URL-safe (base64url).
   */
  seal(binding: CursorBinding, state: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(aad(binding));
    const plaintext = Buffer.from(
      JSON.stringify({ e: this.#now() + this.#ttlMs, s: state }),
      'utf8',
    );
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), ciphertext]).toString(
      'base64url',
    );
  }

  /**
   * Opens a cursor sealed for `binding`. Never throws: a malformed, forged, tampered or foreign
   * cursor is `invalid`; a genuine one past its expiry is `expired`. The state is returned as it
   * was sealed; callers still validate its shape (e.g. with zod) before use.
   */
  open<T = unknown>(raw: string, binding: CursorBinding): OpenedCursor<T> {
    const invalid = { ok: false, reason: 'invalid' } as const;
    if (typeof raw !== 'string' || raw.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(raw))
      return invalid;
    const bytes = Buffer.from(raw, 'base64url');
    if (bytes.length < 1 + IV_BYTES + TAG_BYTES + 1 || bytes[0] !== VERSION) return invalid;
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(1, 1 + IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(aad(binding));
      decipher.setAuthTag(bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
      plaintext = Buffer.concat([
        decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      return invalid;
    }
    let parsed: { e?: unknown; s?: unknown };
    try {
      parsed = JSON.parse(plaintext.toString('utf8')) as {
        e?: unknown;
        s?: unknown;
      };
    } catch {
      return invalid;
    }
    if (typeof parsed.e !== 'number') return invalid;
    if (this.#now() > parsed.e) return { ok: false, reason: 'expired' };
    return { ok: true, state: parsed.s as T };
  }
}

/** The additional authenticated data: an unambiguous encoding of the binding. */
function aad(binding: CursorBinding): Buffer {
  const resource =
    typeof binding.resource === 'string' ? [binding.resource] : [...binding.resource];
  return Buffer.from(
    JSON.stringify(['hmcp-cursor', VERSION, binding.tool, binding.principal, resource]),
    'utf8',
  );
}
