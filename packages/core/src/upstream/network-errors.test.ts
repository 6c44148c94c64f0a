import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors.js';
import { UpstreamCallError } from './errors.js';
import { toUpstreamCallError, upstreamFailureOf } from './network-errors.js';

function coded(code: string, message = 'x'): Error {
  return Object.assign(new Error(message), { code });
}

describe('upstreamFailureOf', () => {
  it('classifies undici fetch failures by the code of their cause', () => {
    const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });
    expect(upstreamFailureOf(fetchFailed(coded('ENOTFOUND')))).toBe('dns');
    expect(upstreamFailureOf(fetchFailed(coded('EAI_AGAIN')))).toBe('dns');
    expect(upstreamFailureOf(fetchFailed(coded('DEPTH_ZERO_SELF_SIGNED_CERT')))).toBe('tls');
    expect(upstreamFailureOf(fetchFailed(coded('CERT_HAS_EXPIRED')))).toBe('tls');
    expect(upstreamFailureOf(fetchFailed(coded('ERR_TLS_CERT_ALTNAME_INVALID')))).toBe('tls');
    expect(upstreamFailureOf(fetchFailed(coded('ERR_SSL_WRONG_VERSION_NUMBER')))).toBe('tls');
    expect(upstreamFailureOf(fetchFailed(coded('ECONNREFUSED')))).toBe('connection_refused');
    expect(upstreamFailureOf(fetchFailed(coded('UND_ERR_CONNECT_TIMEOUT')))).toBe(
      'connect_timeout',
    );
    expect(upstreamFailureOf(fetchFailed(coded('UND_ERR_SOCKET')))).toBe('connection_reset');
    expect(upstreamFailureOf(fetchFailed(coded('ECONNRESET')))).toBe('connection_reset');
    expect(upstreamFailureOf(fetchFailed(new Error('no code')))).toBe('network');
  });

  it('looks inside AggregateError (happy eyeballs tried several addresses)', () => {
    const agg = new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'all failed');
    expect(upstreamFailureOf(new TypeError('fetch failed', { cause: agg }))).toBe(
      'connection_refused',
    );
  });

  it('classifies axios-based SDK errors (jira.js, @slack/web-api keep it as `original`)', () => {
    expect(upstreamFailureOf(coded('ECONNABORTED'))).toBe('deadline');
    expect(upstreamFailureOf(coded('ERR_CANCELED'))).toBe('cancelled');
    const slack = Object.assign(new Error('A request error occurred'), {
      code: 'slack_webapi_request_error',
      original: coded('ENOTFOUND'),
    });
    expect(upstreamFailureOf(slack)).toBe('dns');
  });

  it('classifies abort and timeout DOMExceptions', () => {
    expect(upstreamFailureOf(new DOMException('aborted', 'AbortError'))).toBe('cancelled');
    expect(upstreamFailureOf(new DOMException('timed out', 'TimeoutError'))).toBe('deadline');
  });

  it('classifies a real refused connection from node:net', async () => {
    const err = await new Promise<Error>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: 1 });
      socket.on('error', resolve);
    });
    expect(upstreamFailureOf(err)).toBe('connection_refused');
  });

  it('survives cycles and non-errors', () => {
    const a: { code?: string; cause?: unknown } = {};
    a.cause = a;
    expect(upstreamFailureOf(a)).toBe('network');
    expect(upstreamFailureOf('boom')).toBe('network');
    expect(upstreamFailureOf(undefined)).toBe('network');
  });
});

describe('toUpstreamCallError', () => {
  it('wraps with a fixed message and keeps the original as cause only', () => {
    const original = coded('ENOTFOUND', 'getaddrinfo ENOTFOUND secret-host.internal');
    const err = toUpstreamCallError(original);
    expect(err).toBeInstanceOf(UpstreamCallError);
    expect(err.code).toBe(ErrorCode.UpstreamUnavailable);
    expect(err.reason).toBe('dns');
    expect(err.message).not.toContain('secret-host');
    expect(err.cause).toBe(original);
    expect(toUpstreamCallError(err)).toBe(err);
  });
});
