import { describe, expect, it } from 'vitest';
import { UpstreamCallError } from './errors.js';
import {
  isLoopbackHost,
  parseUpstreamBase,
  resolveUpstreamUrl,
  upstreamPath,
  upstreamPathOf,
} from './origin.js';

const base = parseUpstreamBase('https://jira.example.com/jira/');

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof UpstreamCallError ? err.reason : 'other';
  }
  return undefined;
}

describe('parseUpstreamBase', () => {
  it('keeps the origin and a base path without its trailing slash', () => {
    expect(base).toEqual({ origin: 'https://jira.example.com', basePath: '/jira' });
    expect(parseUpstreamBase('https://slack.com/api/')).toEqual({
      origin: 'https://slack.com',
      basePath: '/api',
    });
    expect(parseUpstreamBase('https://API.Example.com:443')).toEqual({
      origin: 'https://api.example.com',
      basePath: '',
    });
  });
});

describe('isLoopbackHost', () => {
  it('knows 127.0.0.0/8, ::1 and localhost, nothing else', () => {
    for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '127.255.0.9', '[::1]'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['localhost.example.com', '128.0.0.1', '[::2]', '10.0.0.1', '0.0.0.0', '[::]'])
      expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('resolveUpstreamUrl and upstreamPath', () => {
  it('appends the path to the base path and encodes the query', () => {
    const url = resolveUpstreamUrl(base, '/rest/api/3/search/jql', {
      jql: 'project = "SUP" & x',
      fields: ['summary', 'status'],
      nextPageToken: undefined,
    });
    expect(url.href).toBe(
      'https://jira.example.com/jira/rest/api/3/search/jql?jql=project+%3D+%22SUP%22+%26+x&fields=summary&fields=status',
    );
  });

  it('encodes each interpolated value as one segment; a separator or dot segment is refused', () => {
    expect(upstreamPath`/rest/api/3/issue/${'SUP-1'}/comment/${42}`).toBe(
      '/rest/api/3/issue/SUP-1/comment/42',
    );
    expect(upstreamPath`/users/${'ana lópez'}`).toBe('/users/ana%20l%C3%B3pez');
    for (const v of ['a/b', '..', '.', 'a\\b'])
      expect(
        reasonOf(() => resolveUpstreamUrl(base, upstreamPath`/rest/api/3/issue/${v}`)),
        v,
      ).toBe('path_refused');
  });
});

describe('upstreamPathOf (URLs found in upstream data)', () => {
  it('turns a same-origin URL under the base path into a path and query', () => {
    expect(
      upstreamPathOf(
        base,
        'https://jira.example.com/jira/rest/api/3/attachment/content/10000?redirect=false&a=1&a=2#x',
      ),
    ).toEqual({
      path: '/rest/api/3/attachment/content/10000',
      query: { redirect: ['false'], a: ['1', '2'] },
    });
  });

  it('refuses another origin, scheme, port, user info, base path escape and dot segments', () => {
    for (const raw of [
      'https://evil.example/jira/rest/api/3/issue/1',
      'http://jira.example.com/jira/rest/api/3/issue/1',
      'https://jira.example.com:8443/jira/rest/api/3/issue/1',
      'https://user:pw@jira.example.com/jira/rest/api/3/issue/1',
      'https://jira.example.com.evil.example/jira/x',
      'https://jira.example.com/other/x',
      'https://jira.example.com/jira-admin/x',
      'https://jira.example.com/jira/../admin',
      'https://jira.example.com/jira/%2e%2e/admin',
      'https://jira.example.com/jira/a/%2F/b',
      'https://jira.example.com/jira//evil.example/x',
      '/jira/rest/api/3/issue/1',
      'javascript:alert(1)',
      '',
    ]) {
      expect(
        reasonOf(() => upstreamPathOf(base, raw)),
        raw,
      ).toBe('foreign_url');
    }
  });
});
