import type { Secret } from '../credentials.js';
import type { Identity } from '../identity.js';

/**
 * The caller's own access token, kept beside (never inside) its {@link Identity}: tools get the
 * identity, and must never see or forward the token. Only the per-principal credential source
 * reads it, to exchange it at the authorization server (RFC 8693 `subject_token`).
 */
const subjectTokens = new WeakMap<Identity, Secret>();

/** Remembers `token` as the access token `identity` authenticated with; returns `identity`. */
export function attachSubjectToken(identity: Identity, token: Secret): Identity {
  subjectTokens.set(identity, token);
  return identity;
}

/** The access token `identity` authenticated with (OAuth over HTTP), if any. */
export function subjectTokenOf(identity: Identity): Secret | undefined {
  return subjectTokens.get(identity);
}
