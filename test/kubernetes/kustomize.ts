/**
 * A small, pure-JS Kustomize equivalent for the tests: it renders exactly the subset of
 * `kustomize build` (kustomize v5, https://kubectl.docs.kubernetes.io/references/kustomize/) that
 * the manifests under `servers/<name>/deploy/kubernetes/` and `shared/kubernetes/` use, and
 * refuses everything else with an error naming the unsupported field, so a manifest can never
 * silently rely on a feature these tests do not render.
 *
 * No maintained Kustomize implementation exists on npm (the real one is Go; there is no kubectl,
 * kustomize or Helm binary on these machines), so this is built on the `yaml` package. Supported:
 *
 * - `Kustomization` (kustomize.config.k8s.io/v1beta1) and `Component` (v1alpha1) files named
 *   `kustomization.yaml`;
 * - `resources`: YAML files (several documents each) and directories holding a Kustomization;
 * - `components`: directories holding a Component. As in kustomize, a component runs after the
 *   kustomization's own resources and sees them: its resources are added and its patches apply to
 *   everything accumulated so far; the including kustomization's transformers then apply to all;
 * - `configMapGenerator` with `files` (key = file name), `behavior` create or replace, and
 *   `options.disableNameSuffixHash: true` (required: the name hash is not reproduced) and
 *   `options.labels`;
 * - `patches` with `path` to a strategic merge patch and an optional `target` (`kind`, `name`,
 *   `labelSelector` of `key=value` terms); without a target the patch's own kind and name select,
 *   and a patch that selects nothing is an error (as in kustomize);
 * - `images` (`name`, `newName`, `newTag`, `digest`) on `containers` and `initContainers`;
 * - `namespace` on every namespaced object.
 *
 * Strategic merge patch (Kubernetes API conventions, "Strategic Merge Patch"): maps merge
 * recursively, `null` deletes a key, and lists merge by the API's patch merge key where the
 * manifests use one (`containers`, `initContainers`, `env`, `volumes` by `name`; `ports` of a
 * container by `containerPort`; `volumeMounts` by `mountPath`); every other list is replaced.
 * `$patch` directives are refused. Transformer order follows kustomize's builtin order: patches,
 * namespace, images. Files a kustomization names must lie inside its own directory
 * (kustomize's default load restrictor); directories may lie anywhere.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/** One rendered Kubernetes object (plain JSON data). */
export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Record<
    string,
    unknown
  >;
} & Record<string, unknown>;

/** Thrown for every problem: a missing file, an unsupported feature, a patch with no target. */
export class KustomizeError extends Error {
  override name = 'KustomizeError';
}

const KUSTOMIZATION_KEYS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'components',
  'configMapGenerator',
  'patches',
  'images',
]);

/** Kinds that are not namespaced among those the manifests may use. */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'ClusterSecretStore',
  'PriorityClass',
  'StorageClass',
]);

/** Patch merge keys of the lists the manifests patch, by field name. */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
};

/**
 * Renders the kustomization in `dir` (a directory holding `kustomization.yaml`) like
 * `kustomize build dir`.
 *
 * @returns the objects in accumulation order (kustomize sorts by kind on output; order does not
 *   matter to `kubectl apply`).
 * @throws KustomizeError on any file it cannot read or any feature outside the subset above.
 */
export function kustomizeBuild(dir: string): KubeObject[] {
  return build(resolve(dir), 'Kustomization', []);
}

/**
 * Parses every YAML document of a file as plain data with the YAML 1.2 core schema.
 *
 * @throws KustomizeError when a document has errors or is not a mapping.
 */
export function readYamlDocuments(file: string): Record<string, unknown>[] {
  const text = readText(file);
  const out: Record<string, unknown>[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new KustomizeError(`${file}: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isMap(value)) throw new KustomizeError(`${file}: a document is not a mapping`);
    out.push(value);
  }
  return out;
}

function build(
  dir: string,
  expectedKind: 'Kustomization' | 'Component',
  accumulated: KubeObject[],
): KubeObject[] {
  const file = join(dir, 'kustomization.yaml');
  const k: unknown = parse(readText(file));
  if (!isMap(k)) throw new KustomizeError(`${file}: not a mapping`);
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) throw new KustomizeError(`${file}: unsupported field ${key}`);
  }
  const kind = k.kind ?? 'Kustomization';
  if (kind !== expectedKind) {
    throw new KustomizeError(`${file}: expected a ${expectedKind}, found ${String(kind)}`);
  }
  const expectedApi =
    kind === 'Component' ? 'kustomize.config.k8s.io/v1alpha1' : 'kustomize.config.k8s.io/v1beta1';
  if (k.apiVersion !== expectedApi) {
    throw new KustomizeError(`${file}: apiVersion must be ${expectedApi}`);
  }

  // A component works on what its parent accumulated; a kustomization starts afresh.
  const objects: KubeObject[] = kind === 'Component' ? accumulated : [];
  for (const entry of stringList(k.resources, file, 'resources')) {
    const path = resolve(dir, entry);
    if (isDirectory(path)) {
      for (const o of build(path, 'Kustomization', [])) add(objects, o, file);
    } else {
      insideRoot(dir, path, file);
      for (const doc of readYamlDocuments(path)) add(objects, asObject(doc, path), file);
    }
  }
  for (const entry of stringList(k.components, file, 'components')) {
    const path = resolve(dir, entry);
    if (!isDirectory(path))
      throw new KustomizeError(`${file}: component ${entry} is not a directory`);
    build(path, 'Component', objects);
  }
  generateConfigMaps(dir, file, k.configMapGenerator, objects);
  applyPatches(dir, file, k.patches, objects);
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string')
      throw new KustomizeError(`${file}: namespace is not a string`);
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  applyImages(file, k.images, objects);
  return objects;
}

function generateConfigMaps(dir: string, file: string, spec: unknown, objects: KubeObject[]) {
  if (spec === undefined) return;
  if (!Array.isArray(spec)) throw new KustomizeError(`${file}: configMapGenerator is not a list`);
  for (const g of spec) {
    if (!isMap(g)) throw new KustomizeError(`${file}: configMapGenerator entry is not a mapping`);
    for (const key of Object.keys(g)) {
      if (!['name', 'behavior', 'files', 'options'].includes(key)) {
        throw new KustomizeError(`${file}: unsupported configMapGenerator field ${key}`);
      }
    }
    if (typeof g.name !== 'string')
      throw new KustomizeError(`${file}: configMapGenerator without name`);
    const options = isMap(g.options) ? g.options : {};
    for (const key of Object.keys(options)) {
      if (!['disableNameSuffixHash', 'labels'].includes(key)) {
        throw new KustomizeError(`${file}: unsupported configMapGenerator option ${key}`);
      }
    }
    if (options.disableNameSuffixHash !== true) {
      throw new KustomizeError(
        `${file}: configMapGenerator ${g.name} needs options.disableNameSuffixHash: true (the name hash is not rendered here)`,
      );
    }
    const data: Record<string, string> = {};
    for (const entry of stringList(g.files, file, 'configMapGenerator.files')) {
      const path = resolve(dir, entry);
      insideRoot(dir, path, file);
      data[basename(path)] = readText(path);
    }
    const labels = isMap(options.labels) ? (options.labels as Record<string, string>) : undefined;
    const behavior = g.behavior ?? 'create';
    const existing = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === g.name);
    if (behavior === 'create') {
      const cm: KubeObject = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: g.name, ...(labels ? { labels: { ...labels } } : {}) },
        data,
      };
      add(objects, cm, file);
    } else if (behavior === 'replace') {
      if (!existing) throw new KustomizeError(`${file}: no ConfigMap ${g.name} to replace`);
      existing.data = data;
      if (labels) existing.metadata.labels = { ...existing.metadata.labels, ...labels };
    } else {
      throw new KustomizeError(
        `${file}: unsupported configMapGenerator behavior ${String(behavior)}`,
      );
    }
  }
}

function applyPatches(dir: string, file: string, spec: unknown, objects: KubeObject[]) {
  if (spec === undefined) return;
  if (!Array.isArray(spec)) throw new KustomizeError(`${file}: patches is not a list`);
  for (const p of spec) {
    if (!isMap(p)) throw new KustomizeError(`${file}: a patch is not a mapping`);
    for (const key of Object.keys(p)) {
      if (!['path', 'target'].includes(key))
        throw new KustomizeError(`${file}: unsupported patch field ${key}`);
    }
    if (typeof p.path !== 'string') throw new KustomizeError(`${file}: a patch needs a path`);
    const path = resolve(dir, p.path);
    insideRoot(dir, path, file);
    const docs = readYamlDocuments(path);
    if (docs.length !== 1) throw new KustomizeError(`${path}: one patch per file`);
    const patch = asObject(docs[0] as Record<string, unknown>, path);
    const select = selector(p.target, patch, file);
    const matched = objects.filter(select);
    if (matched.length === 0)
      throw new KustomizeError(`${file}: patch ${p.path} matches no object`);
    for (const o of matched) {
      const { metadata, apiVersion: _a, kind: _k, ...rest } = patch;
      const { name: _n, namespace: _ns, ...meta } = metadata;
      const merged = mergePatch(o, { ...rest, metadata: meta }, path) as KubeObject;
      for (const key of Object.keys(o)) delete o[key];
      Object.assign(o, merged);
    }
  }
}

function selector(target: unknown, patch: KubeObject, file: string): (o: KubeObject) => boolean {
  if (target === undefined) {
    return (o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name;
  }
  if (!isMap(target)) throw new KustomizeError(`${file}: a patch target is not a mapping`);
  for (const key of Object.keys(target)) {
    if (!['kind', 'name', 'labelSelector'].includes(key)) {
      throw new KustomizeError(`${file}: unsupported patch target field ${key}`);
    }
  }
  const terms =
    typeof target.labelSelector === 'string'
      ? target.labelSelector.split(',').map((t) => {
          const m = /^\s*([^=!\s]+)\s*=\s*([^=\s]*)\s*$/.exec(t);
          if (!m) throw new KustomizeError(`${file}: unsupported label selector term ${t}`);
          return [m[1] as string, m[2] as string] as const;
        })
      : [];
  return (o) =>
    (target.kind === undefined || o.kind === target.kind) &&
    (target.name === undefined || o.metadata.name === target.name) &&
    terms.every(([key, value]) => o.metadata.labels?.[key] === value);
}

function applyImages(file: string, spec: unknown, objects: KubeObject[]) {
  if (spec === undefined) return;
  if (!Array.isArray(spec)) throw new KustomizeError(`${file}: images is not a list`);
  for (const img of spec) {
    if (!isMap(img) || typeof img.name !== 'string') {
      throw new KustomizeError(`${file}: an images entry needs a name`);
    }
    for (const key of Object.keys(img)) {
      if (!['name', 'newName', 'newTag', 'digest'].includes(key)) {
        throw new KustomizeError(`${file}: unsupported images field ${key}`);
      }
    }
    for (const o of objects) {
      for (const c of podContainers(o)) {
        if (typeof c.image !== 'string') continue;
        const ref = splitImage(c.image);
        if (ref.name !== img.name) continue;
        const name = typeof img.newName === 'string' ? img.newName : ref.name;
        if (typeof img.digest === 'string') c.image = `${name}@${img.digest}`;
        else if (img.newTag !== undefined) c.image = `${name}:${String(img.newTag)}`;
        else c.image = `${name}${ref.suffix}`;
      }
    }
  }
}

/** The containers and init containers of a Deployment, StatefulSet, DaemonSet, Job or Pod. */
export function podContainers(o: KubeObject): Record<string, unknown>[] {
  const spec = podSpec(o);
  if (!spec) return [];
  const list = [spec.containers, spec.initContainers].filter(Array.isArray).flat();
  return list.filter(isMap);
}

/** The pod spec of a workload object (`spec.template.spec`, or `spec` of a Pod), if any. */
export function podSpec(o: KubeObject): Record<string, unknown> | undefined {
  const spec = o.spec;
  if (!isMap(spec)) return undefined;
  if (o.kind === 'Pod') return spec;
  const template = spec.template;
  return isMap(template) && isMap(template.spec) ? template.spec : undefined;
}

function splitImage(image: string): { name: string; suffix: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { name: image.slice(0, at), suffix: image.slice(at) };
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/'))
    return { name: image.slice(0, colon), suffix: image.slice(colon) };
  return { name: image, suffix: '' };
}

/**
 * Strategic merge of `patch` into `base` (new value; neither input is modified).
 *
 * @throws KustomizeError on a `$patch` directive or a merge-key list entry without its key.
 */
export function mergePatch(base: unknown, patch: unknown, where: string, field = ''): unknown {
  if (isMap(patch)) {
    const out: Record<string, unknown> = isMap(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new KustomizeError(`${where}: unsupported directive ${key}`);
      if (value === null) delete out[key];
      else out[key] = mergePatch(out[key], value, where, key);
    }
    return out;
  }
  if (Array.isArray(patch)) {
    const mergeKey = MERGE_KEYS[field];
    if (!mergeKey || !Array.isArray(base)) return structuredClone(patch);
    const out = base.map((item) => structuredClone(item) as unknown);
    for (const item of patch) {
      if (!isMap(item) || item[mergeKey] === undefined) {
        throw new KustomizeError(`${where}: an entry of ${field} has no ${mergeKey}`);
      }
      const index = out.findIndex((b) => isMap(b) && b[mergeKey] === item[mergeKey]);
      if (index >= 0) out[index] = mergePatch(out[index], item, where, field);
      else out.push(structuredClone(item));
    }
    return out;
  }
  return patch;
}

function add(objects: KubeObject[], o: KubeObject, file: string) {
  const clash = objects.find(
    (x) =>
      x.apiVersion === o.apiVersion &&
      x.kind === o.kind &&
      x.metadata.name === o.metadata.name &&
      x.metadata.namespace === o.metadata.namespace,
  );
  if (clash) throw new KustomizeError(`${file}: ${o.kind}/${o.metadata.name} is defined twice`);
  objects.push(o);
}

function asObject(doc: Record<string, unknown>, file: string): KubeObject {
  const meta = doc.metadata;
  if (
    typeof doc.apiVersion !== 'string' ||
    typeof doc.kind !== 'string' ||
    !isMap(meta) ||
    typeof meta.name !== 'string'
  ) {
    throw new KustomizeError(`${file}: every object needs apiVersion, kind and metadata.name`);
  }
  return doc as KubeObject;
}

function insideRoot(dir: string, path: string, file: string) {
  const rel = relative(dir, path);
  if (rel.startsWith('..') || resolve(dir, rel) !== path) {
    throw new KustomizeError(`${file}: ${rel} is outside the kustomization's directory`);
  }
}

function stringList(value: unknown, file: string, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new KustomizeError(`${file}: ${field} is not a list of strings`);
  }
  return value;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new KustomizeError(
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
