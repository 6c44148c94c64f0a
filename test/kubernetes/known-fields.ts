/**
 * Unknown-field detection for built-in Kubernetes objects. The `kubernetes-models` schemas accept
 * additional properties, while the API server refuses unknown fields (`kubectl apply` uses strict
 * field validation by default since Kubernetes 1.27). The official client,
 * `@kubernetes/client-node`, is generated from the Kubernetes OpenAPI document and carries, per
 * model class, the list of its fields with their types (`attributeTypeMap`); this walks an object
 * against those lists.
 */
import * as k8s from '@kubernetes/client-node';

type Attribute = { readonly baseName: string; readonly type: string };
type ModelClass = { getAttributeTypeMap(): readonly Attribute[] };

/** The client's model class name for a built-in apiVersion/kind (e.g. `V1Deployment`). */
export const BUILT_IN_MODELS: Readonly<Record<string, string>> = {
  'v1/Namespace': 'V1Namespace',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'v1/Service': 'V1Service',
  'v1/ConfigMap': 'V1ConfigMap',
  'v1/Secret': 'V1Secret',
  'apps/v1/Deployment': 'V1Deployment',
  'autoscaling/v2/HorizontalPodAutoscaler': 'V2HorizontalPodAutoscaler',
  'policy/v1/PodDisruptionBudget': 'V1PodDisruptionBudget',
  'networking.k8s.io/v1/NetworkPolicy': 'V1NetworkPolicy',
};

const models = k8s as unknown as Record<string, ModelClass | undefined>;
const LEAF_TYPES = new Set(['string', 'number', 'boolean', 'Date', 'any', 'object', 'IntOrString']);

/**
 * Every field path in `data` that the model `type` (a client type expression such as
 * `V1Deployment`, `Array<V1Container>` or `{ [key: string]: string; }`) does not define.
 *
 * @throws Error when a type name has no model class in the client (a gap in this walker).
 */
export function unknownFields(data: unknown, type: string, path = ''): string[] {
  if (data === null || data === undefined || LEAF_TYPES.has(type)) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    return Array.isArray(data)
      ? data.flatMap((item, i) => unknownFields(item, array[1] as string, `${path}[${i}]`))
      : [];
  }
  const record = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (record) {
    return Object.entries(data as Record<string, unknown>).flatMap(([k, v]) =>
      unknownFields(v, record[1] as string, `${path}.${k}`),
    );
  }
  const model = models[type];
  if (!model || typeof model.getAttributeTypeMap !== 'function') {
    throw new Error(`no model for ${type} at ${path || '(root)'}`);
  }
  if (typeof data !== 'object' || Array.isArray(data)) return [];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(data as Record<string, unknown>).flatMap(([k, v]) => {
    const fieldType = attributes.get(k);
    return fieldType === undefined ? [`${path}.${k}`] : unknownFields(v, fieldType, `${path}.${k}`);
  });
}
