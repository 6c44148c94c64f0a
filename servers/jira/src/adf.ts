import { createRequire } from 'node:module';
import { markdownToAdf } from 'marklassian';

const require = createRequire(import.meta.url);
/** `adf-to-md` is CommonJS: `convert(adf)` → `{ result, warnings }`; loaded on first use (faster start). */
type AdfToMd = { convert(adf: unknown): { result: string } };
let adfToMdModule: AdfToMd | undefined;
const adfToMd = (): AdfToMd => {
  adfToMdModule ??= require('adf-to-md') as AdfToMd;
  return adfToMdModule;
};

/** An ADF node (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/). */
interface AdfNode {
  type?: unknown;
  text?: unknown;
  attrs?: Record<string, unknown>;
  content?: unknown;
  marks?: unknown;
}

/** Node types `adf-to-md` renders; it logs every other type to stdout, which is the protocol on stdio. */
const RENDERED = new Set([
  'doc',
  'text',
  'paragraph',
  'heading',
  'hardBreak',
  'inlineCard',
  'blockCard',
  'embedCard',
  'blockquote',
  'bulletList',
  'orderedList',
  'listItem',
  'codeBlock',
  'rule',
  'emoji',
  'table',
  'tableRow',
  'tableHeader',
  'tableCell',
]);
const MARKS = new Set(['code', 'em', 'link', 'strike', 'strong']);
const MAX_DEPTH = 64;

/**
 * Rewrites a document into the node types `adf-to-md` renders: a `mention` becomes the text of
 * its display name, any other unknown inline node with a `text` attribute becomes that text,
 * unknown block nodes keep their content as a paragraph, nodes deeper than 64 levels are dropped,
 * unknown marks are removed. Never throws.
 */
function normalize(node: unknown, depth: number): AdfNode | undefined {
  if (!node || typeof node !== 'object' || depth > MAX_DEPTH) return undefined;
  const n = node as AdfNode;
  const type = typeof n.type === 'string' ? n.type : '';
  const children = Array.isArray(n.content)
    ? n.content.map((c) => normalize(c, depth + 1)).filter((c) => c !== undefined)
    : [];
  if (type === 'text') {
    const marks = Array.isArray(n.marks)
      ? n.marks.filter(
          (m): m is { type: string } =>
            !!m && typeof m === 'object' && MARKS.has(String((m as { type?: unknown }).type)),
        )
      : [];
    return { type: 'text', text: String(n.text ?? ''), marks };
  }
  if (!RENDERED.has(type)) {
    const text = n.attrs?.text;
    if (typeof text === 'string') return { type: 'text', text };
    return children.length > 0 ? { type: 'paragraph', content: children } : undefined;
  }
  const attrs = { ...(n.attrs ?? {}) };
  if (type === 'heading') attrs.level = Math.min(6, Math.max(1, Number(attrs.level) || 1));
  if (type.endsWith('Card')) attrs.url = String(attrs.url ?? '');
  return { type, attrs, content: children };
}

/**
 * Renders an ADF document (a description or comment body as Jira returns it) to Markdown with
 * `adf-to-md`. A missing body is `''`; a body that is not a document or fails to convert is
 * `'[unreadable body]'`.
 */
export function adfToMarkdown(doc: unknown): string {
  if (doc === null || doc === undefined) return '';
  const normalized = normalize(doc, 0);
  if (normalized?.type !== 'doc') return '[unreadable body]';
  try {
    return adfToMd().convert({ version: 1, ...normalized }).result;
  } catch {
    return '[unreadable body]';
  }
}

/** True when the document holds a node of this type (e.g. `mention`) at any depth. */
export function adfHasNode(node: unknown, type: string, depth = 0): boolean {
  if (!node || typeof node !== 'object' || depth > MAX_DEPTH) return false;
  const n = node as AdfNode;
  if (n.type === type) return true;
  return Array.isArray(n.content) && n.content.some((c) => adfHasNode(c, type, depth + 1));
}

/**
 * Converts Markdown written by the model to an ADF document with `marklassian`. Mentions never
 * come out of it: `@name` and `[~accountid:…]` stay plain text (Jira notifies only for ADF
 * `mention` nodes), and a document holding one anyway is refused.
 *
 * @throws Error when the converter produced a `mention` node (not expected; a second wall)
 */
export function markdownToAdfDoc(markdown: string): {
  type: 'doc';
  version: 1;
  content: unknown[];
} {
  const doc = markdownToAdf(markdown);
  if (adfHasNode(doc, 'mention')) throw new Error('the converted body holds a mention');
  return doc as { type: 'doc'; version: 1; content: unknown[] };
}
