import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type * as X509 from '@peculiar/x509';
import type { z } from 'zod';
import type { mtlsConfigSchema, mtlsRuleSchema } from '../config.js';
import { StartupError } from '../errors.js';

/** The `auth.mtls` section. */
export type MtlsConfig = z.infer<typeof mtlsConfigSchema>;
/** One `auth.mtls.rules[]` entry. */
export type MtlsRule = z.infer<typeof mtlsRuleSchema>;

/** What the TLS layer established about the client of one request. */
export interface PeerTls {
  /** The client certificate chained to a configured CA, is within its validity and not revoked. */
  readonly authorized: boolean;
  /** OpenSSL's reason when not authorized (e.g. `CERT_HAS_EXPIRED`, `CERT_REVOKED`). */
  readonly authorizationError?: string | undefined;
  /** The client certificate (DER), when one was presented. */
  readonly certificate?: Buffer | undefined;
}

/** TLS options of the HTTPS listener for mutual TLS. */
export interface MtlsServerOptions {
  readonly ca: string;
  readonly crl?: Buffer | undefined;
  readonly requestCert: true;
  /**
   * False: the handshake completes and the HTTP edge refuses an unverified client with a 401
   * naming the reason (audited), instead of an anonymous handshake failure. Every request is
   * still refused unless `authorized` (see {@link peerTlsOf}).
   */
  readonly rejectUnauthorized: false;
}

/**
 * The listener options of `auth.mtls`: the CA bundle (from its credential source, `loadCa`) and
 * the CRL file. Node verifies each client certificate against them (chain, validity dates, and
 * the CRL when given).
 *
 * @throws StartupError when the CA bundle is empty or the CRL file cannot be read.
 */
export async function mtlsServerOptions(
  mtls: MtlsConfig,
  loadCa: () => Promise<string | undefined>,
): Promise<MtlsServerOptions> {
  const ca = await loadCa();
  if (!ca?.includes('BEGIN CERTIFICATE'))
    throw new StartupError('auth.mtls.ca: the source holds no PEM certificate');
  let crl: Buffer | undefined;
  if (mtls.crlFile) {
    try {
      crl = await readFile(mtls.crlFile);
    } catch (err) {
      throw new StartupError(
        `cannot read auth.mtls.crlFile ${mtls.crlFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return { ca, crl, requestCert: true, rejectUnauthorized: false };
}

/** The client certificate state of a request's TLS socket (undefined on plain HTTP). */
export function peerTlsOf(req: IncomingMessage): PeerTls | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate();
  const certificate = peer && Buffer.isBuffer(peer.raw) ? peer.raw : undefined;
  const error = socket.authorizationError;
  return {
    authorized: socket.authorized === true && certificate !== undefined,
    authorizationError:
      error === undefined || error === null
        ? undefined
        : typeof error === 'string'
          ? error
          : ((error as { code?: string }).code ?? String(error)),
    certificate,
  };
}

/**
 * RFC 8705 §3.1 `x5t#S256`: the base64url SHA-256 of the DER certificate.
 */
export function certificateThumbprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}

/** A safe, stable reason for an unverified client certificate (OpenSSL's code, mapped). */
export function describeCertificateFailure(peer: PeerTls | undefined): string {
  if (!peer?.certificate) return 'a client certificate is required';
  switch (peer.authorizationError) {
    case 'CERT_HAS_EXPIRED':
      return 'the client certificate has expired';
    case 'CERT_NOT_YET_VALID':
      return 'the client certificate is not yet valid';
    case 'CERT_REVOKED':
      return 'the client certificate is revoked';
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT':
      return 'the client certificate is not issued by a trusted CA';
    case 'UNABLE_TO_GET_CRL':
    case 'CRL_HAS_EXPIRED':
    case 'CRL_NOT_YET_VALID':
      return 'the revocation list does not cover the client certificate';
    default:
      return 'the client certificate could not be verified';
  }
}

let x509Module: Promise<typeof X509> | undefined;
/** `@peculiar/x509`, imported once on first use (servers without mTLS never load it). */
function loadX509(): Promise<typeof X509> {
  x509Module ??= import('@peculiar/x509');
  return x509Module;
}

/** The values of `field` in a certificate (parsed with `@peculiar/x509`). */
function valuesOf(
  x509: typeof X509,
  cert: X509.X509Certificate,
  field: MtlsRule['field'],
): string[] {
  if (field === 'subject.CN') return cert.subjectName.getField('CN');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return [];
  const type = field === 'san.dns' ? 'dns' : field === 'san.uri' ? 'url' : 'email';
  return san.names.items.filter((n) => n.type === type).map((n) => n.value);
}

/** A principal mapped from a certificate. */
export interface CertificatePrincipal {
  readonly principal: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
}

/**
 * Maps a verified client certificate to a principal by the first matching rule (in order):
 * the principal is the matching value itself (e.g. `spiffe://example.org/billing`).
 *
 * @returns undefined when no rule matches (the request is refused) or the certificate cannot be
 *   parsed.
 */
export async function principalFromCertificate(
  der: Buffer,
  rules: readonly MtlsRule[],
): Promise<CertificatePrincipal | undefined> {
  const x509 = await loadX509();
  let cert: X509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
  } catch {
    return undefined;
  }
  for (const rule of rules) {
    const re = new RegExp(`^(?:${rule.pattern})$`, 'u');
    const value = valuesOf(x509, cert, rule.field).find((v) => re.test(v));
    if (value !== undefined)
      return { principal: value, roles: [...rule.roles], scopes: [...rule.scopes] };
  }
  return undefined;
}
