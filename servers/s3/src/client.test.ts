import { NoSuchKey, S3ServiceException } from '@aws-sdk/client-s3';
import { ErrorCode, ToolError } from '@hardened-mcp/core';
import { describe, expect, it } from 'vitest';
import { AssumeRoleError } from './assume-role.js';
import { toToolError } from './client.js';

function s3Error(
  name: string,
  status: number,
  message = 'S3 says: key reports/secret.txt',
): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    message,
  });
}

describe('toToolError', () => {
  it.each([
    [
      new NoSuchKey({ message: 'x', $metadata: { httpStatusCode: 404 } }),
      ErrorCode.UpstreamError,
      /does not exist/,
    ],
    [s3Error('NotFound', 404), ErrorCode.UpstreamError, /object does not exist/],
    [s3Error('NoSuchBucket', 404), ErrorCode.UpstreamError, /bucket does not exist/],
    [s3Error('AccessDenied', 403), ErrorCode.Forbidden, /denied access/],
    [s3Error('Forbidden', 403), ErrorCode.Forbidden, /denied access/],
    [s3Error('InvalidRange', 416), ErrorCode.InvalidInput, /range/],
    [s3Error('PreconditionFailed', 412), ErrorCode.UpstreamError, /changed during the call/],
    [s3Error('SlowDown', 503), ErrorCode.UpstreamUnavailable, /throttling/],
    [s3Error('InternalError', 500), ErrorCode.UpstreamUnavailable, /unavailable/],
    [s3Error('RequestTimeout', 400), ErrorCode.Timeout, /in time/],
    [
      s3Error('InvalidArgument', 400),
      ErrorCode.UpstreamError,
      /^S3 rejected the request \(InvalidArgument\)$/,
    ],
    [
      new AssumeRoleError('arn:aws:iam::1:role/r', 'sts:AssumeRole of arn failed (AccessDenied)'),
      ErrorCode.UpstreamUnavailable,
      /AWS credentials/,
    ],
    [
      Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }),
      ErrorCode.UpstreamUnavailable,
      /AWS credentials/,
    ],
    [
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }),
      ErrorCode.UpstreamUnavailable,
      /could not be reached/,
    ],
    [Object.assign(new Error('timed out'), { name: 'TimeoutError' }), ErrorCode.Timeout, /in time/],
    [new Error('boom'), ErrorCode.Internal, /internal error/],
  ])('%s → %s', (err, code, message) => {
    const t = toToolError(err);
    expect(t).toBeInstanceOf(ToolError);
    expect(t.code).toBe(code);
    expect(t.message).toMatch(message);
    // never S3's message text, keys or hosts
    expect(t.message).not.toMatch(/reports\/secret|10\.0\.0\.1|S3 says/);
    expect(t.cause).toBe(err);
  });

  it('passes ToolErrors through', () => {
    const e = new ToolError(ErrorCode.PolicyDenied, 'no');
    expect(toToolError(e)).toBe(e);
  });
});
