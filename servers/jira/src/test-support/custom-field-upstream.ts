/**
 * A test front for the shared Jira fake that adds what the fake does not model: custom fields.
 * It answers `GET /rest/api/3/field` itself (system and custom fields, shaped as the v3
 * description's `FieldDetails`), forwards every other request to the fake unchanged, and adds the
 * custom-field values it holds to the issues the fake returns (`GET /rest/api/3/issue/{key}` and
 * `GET /rest/api/3/search/jql`) when the request's `fields=` names them, as Jira does.
 *
 * The fake's JQL reader knows no custom field: a search whose JQL names one (`cf[N]` or a custom
 * field's clause name) is answered here with an empty last page, and recorded. Tests use that to
 * show such a search reached Jira; they never read matching results from it.
 *
 * Test code only (excluded from the build).
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/** A custom field of the front's site. */
export interface TestCustomField {
  /** `customfield_N`. */
  readonly id: string;
  /** Its display name (also a JQL clause name, as in Jira). */
  readonly name: string;
  /** `FieldDetails.schema.type`: `string`, `number`, `option`, `array`, `user`, `option-with-child`… */
  readonly type: string;
  /** `FieldDetails.schema.custom`, e.g. `com.atlassian.jira.plugin.system.customfieldtypes:float`. */
  readonly custom: string;
  /** `FieldDetails.schema.items` for arrays. */
  readonly items?: string;
}

/** One request the front answered or forwarded (never its Authorization header). */
export interface FrontRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
}

/** A running front. */
export interface CustomFieldUpstream {
  /** `http://127.0.0.1:PORT`: configure it as the site (or as prism's upstream). */
  readonly url: string;
  /** Every request, oldest first. */
  readonly requests: FrontRequest[];
  /** Custom field values by issue key (current key), by field id: Jira's raw REST v3 shapes. */
  readonly values: Map<string, Record<string, unknown>>;
  /** Replaces the site's custom fields (e.g. a rename), from the next field-list request on. */
  setFields(fields: readonly TestCustomField[]): void;
  /** While on, `GET /rest/api/3/field` answers 503 (the list unavailable). */
  failFieldList(on: boolean): void;
  /** How many field-list requests were answered (failed ones included). */
  fieldListRequests(): number;
  stop(): Promise<void>;
}

/** A few system fields, as `GET /rest/api/3/field` lists them. */
const SYSTEM_FIELDS = [
  ['summary', 'Summary', 'string', ['summary']],
  ['description', 'Description', 'string', ['description']],
  ['status', 'Status', 'status', ['status']],
  ['fixVersions', 'Fix versions', 'array', ['fixVersion']],
  ['comment', 'Comment', 'comments-page', ['comment']],
] as const;

function fieldList(custom: readonly TestCustomField[]): unknown[] {
  return [
    ...SYSTEM_FIELDS.map(([id, name, type, clauseNames]) => ({
      id,
      key: id,
      name,
      custom: false,
      orderable: true,
      navigable: true,
      searchable: true,
      clauseNames: [...clauseNames],
      schema: { type, system: id },
    })),
    ...custom.map((f) => {
      const n = Number(f.id.slice('customfield_'.length));
      return {
        id: f.id,
        key: f.id,
        name: f.name,
        custom: true,
        orderable: true,
        navigable: true,
        searchable: true,
        clauseNames: [`cf[${n}]`, f.name],
        schema: {
          type: f.type,
          ...(f.items ? { items: f.items } : {}),
          custom: f.custom,
          customId: n,
        },
      };
    }),
  ];
}

const CF = 'com.atlassian.jira.plugin.system.customfieldtypes';

/** The site's custom fields (REST v3 shapes of each type's value below). */
export const SAMPLE_CUSTOM_FIELDS: readonly TestCustomField[] = [
  { id: 'customfield_10016', name: 'Story Points', type: 'number', custom: `${CF}:float` },
  { id: 'customfield_10050', name: 'Customer email', type: 'string', custom: `${CF}:textfield` },
  { id: 'customfield_10060', name: 'Root cause', type: 'string', custom: `${CF}:textarea` },
  { id: 'customfield_10042', name: 'Severity', type: 'option', custom: `${CF}:select` },
  {
    id: 'customfield_10070',
    name: 'Approvers',
    type: 'array',
    items: 'user',
    custom: `${CF}:multiuserpicker`,
  },
  {
    id: 'customfield_10071',
    name: 'Region',
    type: 'option-with-child',
    custom: `${CF}:cascadingselect`,
  },
  { id: 'customfield_10081', name: 'Impact', type: 'string', custom: `${CF}:textfield` },
  { id: 'customfield_10082', name: 'Impact', type: 'string', custom: `${CF}:textfield` },
];
export const SAMPLE_USER = {
  accountId: '5b10ac8d82e05b22cc7d4ef5',
  displayName: 'Maria Jensen',
  emailAddress: 'maria.jensen@example.com',
  active: true,
};
/** SUP-1's custom values (story points, a customer e-mail, rich text, a select, users, a cascading select), as Jira Cloud REST v3 returns them. */
export const SAMPLE_CUSTOM_VALUES = {
  'SUP-1': {
    customfield_10016: 5,
    customfield_10050: 'maria.jensen@example.com',
    customfield_10060: {
      type: 'doc',
      version: 1,
      content: [
        {
          type: 'paragraph',
          content: [
            { type: 'text', text: 'The reset token is ' },
            { type: 'text', text: 'single-use', marks: [{ type: 'strong' }] },
          ],
        },
      ],
    },
    customfield_10042: { self: 'x', value: 'S2', id: '10100' },
    customfield_10070: [SAMPLE_USER],
    customfield_10071: { value: 'EMEA', id: '1', child: { value: 'Nordics', id: '2' } },
  },
};

/**
 * Starts the front on 127.0.0.1 before `target` (the fake's `url`).
 *
 * @param fields - the site's custom fields
 * @param values - initial custom-field values by issue key
 */
export async function startCustomFieldUpstream(
  target: string,
  fields: readonly TestCustomField[],
  values: Record<string, Record<string, unknown>> = {},
): Promise<CustomFieldUpstream> {
  let custom = [...fields];
  let failing = false;
  let listCount = 0;
  const requests: FrontRequest[] = [];
  const stored = new Map(Object.entries(values));
  const to = new URL(target);

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json;charset=UTF-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };

  /** Adds the stored values of the custom fields `wanted` names to one issue of the fake's answer. */
  const augment = (issue: unknown, wanted: readonly string[]) => {
    const i = issue as { key?: unknown; fields?: Record<string, unknown> } | null;
    if (!i || typeof i.key !== 'string' || !i.fields) return;
    const v = stored.get(i.key) ?? {};
    for (const id of wanted)
      if (custom.some((f) => f.id === id)) i.fields[id] = Object.hasOwn(v, id) ? v[id] : null;
  };

  const namesCustom = (jql: string) => {
    const lower = jql.toLowerCase();
    return /\bcf\[\d+\]/.test(lower) || custom.some((f) => lower.includes(f.name.toLowerCase()));
  };

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, url: URL) => {
    const wanted = (url.searchParams.get('fields') ?? '').split(',').filter(Boolean);
    const rewrite =
      req.method === 'GET' &&
      (url.pathname === '/rest/api/3/search/jql' ||
        /^\/rest\/api\/3\/issue\/[^/]+$/.test(url.pathname)) &&
      wanted.some((w) => w.startsWith('customfield_'));
    const headers = { ...req.headers, host: to.host };
    const up = httpRequest(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers,
      },
      (upRes) => {
        if (!rewrite || upRes.statusCode !== 200) {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            issues?: unknown[];
          };
          if (Array.isArray(answer.issues)) for (const i of answer.issues) augment(i, wanted);
          else augment(answer, wanted);
          send(res, 200, answer);
        });
      },
    );
    up.on('error', () => send(res, 502, { errorMessages: ['the fake did not answer'] }));
    up.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push({
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
      });
      if (req.method === 'GET' && url.pathname === '/rest/api/3/field') {
        listCount += 1;
        if (failing) return send(res, 503, { errorMessages: ['Service unavailable.'] });
        return send(res, 200, fieldList(custom));
      }
      if (
        req.method === 'GET' &&
        url.pathname === '/rest/api/3/search/jql' &&
        namesCustom(url.searchParams.get('jql') ?? '')
      )
        return send(res, 200, { issues: [], isLast: true });
      forward(req, res, Buffer.concat(chunks), url);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    values: stored,
    setFields(next) {
      custom = [...next];
    },
    failFieldList(on) {
      failing = on;
    },
    fieldListRequests: () => listCount,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
