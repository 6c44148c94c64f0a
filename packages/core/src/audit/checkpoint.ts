/**
 * Signed checkpoints of the audit chain: a record that signs the chain head (the previous
 * record's `seq` and `hash`) with HMAC-SHA256 (RFC 2104) or Ed25519 (RFC 8032), so a rewritten
 * chain (which cannot be re-signed without the key) and records cut after the last checkpoint
 * are detectable by `verify`.
 *
 * @module
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';

/** `tool` of checkpoint records. */
export const CHECKPOINT_TOOL = 'audit:checkpoint';

/** Signature algorithm of a checkpoint. */
export type CheckpointAlgorithm = 'hmac-sha256' | 'ed25519';

/** The `arguments` of a checkpoint record. */
export interface CheckpointArguments {
  readonly alg: CheckpointAlgorithm;
  readonly keyId: string;
  /** `seq` and `hash` of the record just before the checkpoint (the head it signs). */
  readonly seq: number;
  readonly hash: string;
  /** Base64 signature over {@link checkpointMessage}. */
  readonly sig: string;
}

/** Signs checkpoint messages. */
export interface CheckpointSigner {
  readonly algorithm: CheckpointAlgorithm;
  readonly keyId: string;
  sign(message: Buffer): Buffer;
}

/** Checks checkpoint signatures. */
export interface CheckpointVerifier {
  readonly algorithm: CheckpointAlgorithm;
  verify(message: Buffer, signature: Buffer): boolean;
}

/** The signed bytes: `hardened-mcp audit checkpoint v1\n<seq>\n<hash>` (UTF-8). */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`hardened-mcp audit checkpoint v1\n${seq}\n${hash}`, 'utf8');
}

/**
 * Creates a signer.
 *
 * @param key HMAC: the shared secret (at least 32 bytes of UTF-8 recommended); Ed25519: a
 *   PKCS#8 PEM private key.
 * @throws TypeError for an empty HMAC key or a PEM that is not an Ed25519 private key.
 */
export function createCheckpointSigner(
  algorithm: CheckpointAlgorithm,
  key: string,
  keyId: string,
): CheckpointSigner {
  if (algorithm === 'hmac-sha256') {
    if (key.length === 0) throw new TypeError('checkpoint: empty HMAC key');
    return {
      algorithm,
      keyId,
      sign: (message) => createHmac('sha256', key).update(message).digest(),
    };
  }
  const privateKey = createPrivateKey(key);
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('checkpoint: the key is not an Ed25519 private key');
  }
  return { algorithm, keyId, sign: (message) => sign(null, message, privateKey) };
}

/**
 * Creates a verifier.
 *
 * @param key HMAC: the shared secret; Ed25519: a PEM public key (or the private key, whose public
 *   half is used).
 * @throws TypeError for a PEM that is not an Ed25519 key.
 */
export function createCheckpointVerifier(
  algorithm: CheckpointAlgorithm,
  key: string,
): CheckpointVerifier {
  if (algorithm === 'hmac-sha256') {
    return {
      algorithm,
      verify: (message, signature) => {
        const expected = createHmac('sha256', key).update(message).digest();
        return expected.length === signature.length && timingSafeEqual(expected, signature);
      },
    };
  }
  const publicKey = createPublicKey(key);
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('checkpoint: the key is not an Ed25519 key');
  }
  return { algorithm, verify: (message, signature) => verify(null, message, publicKey, signature) };
}
