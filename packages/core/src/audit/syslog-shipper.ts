/**
 * The syslog shipper: RFC 5424 messages over TCP with TLS (RFC 5425), framed by octet counting
 * (RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`). Messages are produced by `glossy`.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { connect, type TLSSocket } from 'node:tls';
import type { Produce } from 'glossy';
import type { AuditShipper } from './remote-sink.js';

/**
 * `glossy`'s producer class, loaded when the first syslog shipper is made: a server without a
 * syslog sink never loads it (it was on every server's path to its first `tools/list`).
 */
const loadProduce = (): typeof Produce =>
  (createRequire(import.meta.url)('glossy') as { Produce: typeof Produce }).Produce;

/** Options of {@link createSyslogTlsShipper}. */
export interface SyslogTlsShipperOptions {
  readonly host: string;
  /** TCP port (RFC 5425 assigns 6514). */
  readonly port: number;
  /** PEM CA bundle to trust (default: the system store). */
  readonly ca?: string | Buffer | undefined;
  /** TLS server name to verify (default `host`). */
  readonly servername?: string | undefined;
  /** Client certificate and key (PEM) when the collector requires mutual TLS. */
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** `APP-NAME` (default `hardened-mcp`). */
  readonly appName?: string | undefined;
  /** Syslog facility (default `audit`, 13). */
  readonly facility?: string | undefined;
  /** Connect / write timeout, ms (default 10 000). */
  readonly timeoutMs?: number | undefined;
}

/**
 * Formats one audit line as an RFC 5424 message: severity `notice` for denials and errors,
 * `info` otherwise; `MSGID` `audit`; structured data `[audit@32473 seq=… hash=…]` (32473 is the
 * documentation enterprise number of RFC 5612); MSG is the full audit line (so `seq`,
 * `prevHash` and `hash` reach the collector and the chain can be verified there).
 *
 * @throws Error if `glossy` refuses the fields.
 */
export function formatSyslogRecord(
  line: string,
  producer: Produce,
  facility = 'audit',
  host = hostname(),
): string {
  const record = JSON.parse(line) as { time: string; seq: number; hash: string; outcome: string };
  const message = producer.produce({
    facility,
    severity: record.outcome === 'success' ? 'info' : 'notice',
    date: new Date(record.time),
    host: host.replace(/[^\x21-\x7e]/g, '') || '-',
    pid: process.pid,
    msgID: 'audit',
    structuredData: { 'audit@32473': { seq: String(record.seq), hash: record.hash } },
    message: line,
  });
  if (message === false) throw new Error('syslog: the message could not be formatted');
  return message;
}

/**
 * Creates a shipper that keeps one TLS connection to the collector (reconnecting after an
 * error) and writes each batch as octet-counted RFC 5424 messages. `send` resolves once the
 * socket accepted every byte (syslog has no application-level acknowledgement: a collector that
 * dies after reading may lose the tail of a batch; prefer the HTTPS or OTLP sinks where that
 * matters, or pair syslog with them).
 */
export function createSyslogTlsShipper(options: SyslogTlsShipperOptions): AuditShipper {
  const producer = new (loadProduce())({
    type: 'RFC5424',
    appName: options.appName ?? 'hardened-mcp',
  });
  const timeout = options.timeoutMs ?? 10_000;
  let socket: TLSSocket | undefined;

  const open = () =>
    new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({
        host: options.host,
        port: options.port,
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        servername: options.servername ?? options.host,
        minVersion: 'TLSv1.2',
      });
      const timer = setTimeout(() => s.destroy(new Error('syslog: connect timeout')), timeout);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      s.on('close', () => {
        if (socket === s) socket = undefined;
      });
      // The collector closing its side means it takes nothing more: drop the connection now
      // rather than writing into it.
      s.on('end', () => s.destroy());
      // The collector sends nothing back (RFC 5425); read and drop anything it does send.
      s.on('data', () => {});
    });

  return {
    async send(lines) {
      const frames = lines.map((line) => {
        const msg = Buffer.from(formatSyslogRecord(line, producer, options.facility), 'utf8');
        return Buffer.concat([Buffer.from(`${msg.length} `, 'ascii'), msg]);
      });
      if (!socket || socket.destroyed) socket = await open();
      const s = socket;
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error) => reject(err);
          s.once('error', onError);
          s.write(Buffer.concat(frames), (err) => {
            s.off('error', onError);
            if (err) reject(err);
            else resolve();
          });
        });
      } catch (err) {
        s.destroy();
        socket = undefined;
        throw err;
      }
    },
    async close() {
      const s = socket;
      socket = undefined;
      if (s && !s.destroyed) await new Promise<void>((resolve) => s.end(resolve));
    },
  };
}
