import { describe, expect, it } from 'vitest';
import { StartupError } from '../errors.js';
import { createAllowlist } from './allowlist.js';

describe('createAllowlist', () => {
  it('matches exact identifiers case-sensitively by default', () => {
    const channels = createAllowlist({ exact: ['C0123ABCD', 'C0999XYZ'] });
    expect(channels.allows('C0123ABCD')).toBe(true);
    expect(channels.allows('c0123abcd')).toBe(false);
    expect(channels.allows('C0123ABC')).toBe(false);
    expect(channels.allows('C0123ABCDE')).toBe(false);
    expect(channels.allows('')).toBe(false);
  });

  it('matches case-insensitively when the system declares it (Jira project keys)', () => {
    const projects = createAllowlist({ exact: ['ACME', 'OPS'], caseRule: 'insensitive' });
    expect(projects.match('acme')).toEqual({ ok: true, kind: 'exact', entry: 'ACME' });
    expect(projects.allows('Ops')).toBe(true);
    expect(projects.allows('ACMEX')).toBe(false);
    // No locale-specific folding: a dotted capital İ is not an i.
    expect(createAllowlist({ exact: ['ID'], caseRule: 'insensitive' }).allows('İD')).toBe(false);
  });

  it('applies the trailing-separator rule: reports/ never matches reports-secret/', () => {
    const keys = createAllowlist({ prefixes: ['reports/', 'reports/2024/private/'] });
    expect(keys.allows('reports/q3.csv')).toBe(true);
    expect(keys.allows('reports/')).toBe(true);
    expect(keys.allows('reports-secret/q3.csv')).toBe(false);
    expect(keys.allows('reports')).toBe(false);
    expect(keys.allows('Reports/q3.csv')).toBe(false);
    expect(keys.match('reports/2024/private/x')).toEqual({
      ok: true,
      kind: 'prefix',
      entry: 'reports/2024/private/',
    });
    const pages = createAllowlist({ prefixes: ['ENG:'], separator: ':', caseRule: 'insensitive' });
    expect(pages.allows('eng:Runbooks')).toBe(true);
    expect(pages.allows('ENGINEERING:Runbooks')).toBe(false);
  });

  it('allows nothing when empty (fail closed)', () => {
    const none = createAllowlist({});
    expect(none.allows('anything')).toBe(false);
    expect(none.allows('/')).toBe(false);
  });

  it('refuses prefixes without the separator, a bare separator and empty entries at startup', () => {
    expect(() => createAllowlist({ prefixes: ['reports'], what: 's3.prefixes' })).toThrow(
      /s3\.prefixes: the prefix "reports" must end with "\/"/,
    );
    expect(() => createAllowlist({ prefixes: ['/'] })).toThrow(StartupError);
    expect(() => createAllowlist({ exact: [''] })).toThrow(StartupError);
    expect(() => createAllowlist({ prefixes: ['a/'], separator: '' })).toThrow(StartupError);
  });

  it('is frozen', () => {
    const list = createAllowlist({ exact: ['A'] });
    expect(Object.isFrozen(list)).toBe(true);
    expect(Object.isFrozen(list.exact)).toBe(true);
  });
});
