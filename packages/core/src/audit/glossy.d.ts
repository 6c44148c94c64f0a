/** Types for the parts of `glossy` (RFC 5424 syslog producer) that the syslog shipper uses. */
declare module 'glossy' {
  export interface GlossyProduceOptions {
    facility?: string | number;
    severity?: string | number;
    date?: Date;
    host?: string;
    appName?: string;
    pid?: number | string;
    msgID?: string;
    structuredData?: Record<string, Record<string, string>>;
    message?: string;
  }
  export class Produce {
    constructor(options: { type: 'RFC5424' | 'RFC3164'; appName?: string; host?: string });
    produce(options: GlossyProduceOptions): string | false;
  }
}
