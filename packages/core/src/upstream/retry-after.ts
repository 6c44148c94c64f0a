/**
 * `Retry-After` (RFC 9110 §10.2.3): `delay-seconds` (a non-negative decimal integer) or an
 * `HTTP-date` (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, which
 * `Date.parse` reads).
 */

/**
 * Milliseconds to wait according to a `Retry-After` header value, or `undefined` when the value
 * is absent or not one of the two forms. A date in the past gives `0`.
 *
 * @param value - the header value (`null` when absent)
 * @param now - the current time in ms since the epoch (tests pass a fixed clock)
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const seconds = Number(v);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // An HTTP-date names a weekday and GMT; reject anything else Date.parse might accept.
  if (!/^[A-Za-z]{3,9}, /.test(v) && !/^[A-Za-z]{3} [A-Za-z]{3} /.test(v)) return undefined;
  // asctime-date carries no zone; HTTP dates are always GMT (RFC 9110 §5.6.7).
  const asctime = /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/.test(v);
  const at = Date.parse(asctime ? `${v} GMT` : v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
