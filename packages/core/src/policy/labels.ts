/**
 * Data classification labels, lowest to highest. The order is the rule: a principal may see data
 * labelled at or below its clearance (cf. ISO/IEC 27001:2022 Annex A 5.12 "Classification of
 * information", which leaves the scheme to the organisation; these four levels are the common one).
 */
export const LABELS = ['public', 'internal', 'confidential', 'restricted'] as const;

/** One classification label. */
export type Label = (typeof LABELS)[number];

/** The rank of a label: public 0, internal 1, confidential 2, restricted 3. */
export function labelRank(label: Label): number {
  return LABELS.indexOf(label);
}

/** The higher of two labels. */
export function maxLabel(a: Label, b: Label): Label {
  return labelRank(a) >= labelRank(b) ? a : b;
}

/**
 * Finds the label of a resource path among the configured labels: the longest configured key
 * that equals the path or is a prefix of it ending at a segment boundary (`.` or `/`). Paths are
 * the connector's (documented per connector): `schema.table.column` for PostgreSQL,
 * `bucket/prefix/key` for S3, a folder id for the example connector.
 */
export interface Classifier {
  /** The label of `path`, or `fallback` when no configured key matches. */
  labelOf(path: string): Label;
  /** The highest label of `paths` (the fallback for an empty list). */
  highest(paths: readonly string[]): Label;
  /** True when at least one label is configured. */
  readonly configured: boolean;
}

/**
 * Builds a {@link Classifier} from `labels` (path → label) and the label of unlabelled paths.
 * Keys are matched case-sensitively; a key ending in `/` or `.` matches everything below it.
 */
export function createClassifier(
  labels: Readonly<Record<string, Label>>,
  fallback: Label,
): Classifier {
  const keys = Object.keys(labels).sort((a, b) => b.length - a.length);
  const cache = new Map<string, Label>();
  const labelOf = (path: string): Label => {
    const hit = cache.get(path);
    if (hit) return hit;
    let found: Label = fallback;
    for (const key of keys) {
      if (
        path === key ||
        (path.startsWith(key) &&
          (key.endsWith('/') ||
            key.endsWith('.') ||
            path[key.length] === '.' ||
            path[key.length] === '/'))
      ) {
        found = labels[key] ?? fallback;
        break;
      }
    }
    if (cache.size < 10_000) cache.set(path, found);
    return found;
  };
  return Object.freeze({
    labelOf,
    highest(paths: readonly string[]) {
      let top: Label | undefined;
      for (const p of paths) top = top === undefined ? labelOf(p) : maxLabel(top, labelOf(p));
      return top ?? fallback;
    },
    configured: keys.length > 0,
  });
}
