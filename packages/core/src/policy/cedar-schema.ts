import type { SchemaJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { ResourceAttributeType, Tool } from '../tool.js';

/** The Cedar namespace of every generated type and action. */
export const CEDAR_NAMESPACE = 'Hmcp';
/** Resource type of tools that declare no resource: the server itself (id = server name). */
export const SERVER_RESOURCE_TYPE = 'Server';

const ATTRIBUTE_TYPES: Record<ResourceAttributeType, object> = {
  String: { type: 'String' },
  Long: { type: 'Long' },
  Boolean: { type: 'Boolean' },
  StringSet: { type: 'Set', element: { type: 'String' } },
};

/** Attributes the core adds to every resource entity (from classification). */
const CORE_RESOURCE_ATTRIBUTES = {
  /** Rank of the resource's label: 0 public … 3 restricted. */
  classification: { type: 'Long' },
  /** The label itself. */
  label: { type: 'String' },
} as const;

/**
 * Generates the Cedar schema (JSON form, namespace `Hmcp`) from the connector's tool
 * declarations:
 *
 * - `Hmcp::Principal` (member of `Hmcp::Role`) with `roles`, `groups` (sets of strings),
 *   `department` (string), `clearance` (long, 0 public … 3 restricted), `clearanceLabel`;
 * - one entity type per declared resource type with its attributes plus `classification`
 *   (long) and `label`, and `Hmcp::Server` (`name`) for tools that declare none;
 * - one action per tool, member of the action groups `read` or `write`, and `egress` for egress
 *   tools;
 * - the common type `Context`: `time` (`epoch` seconds at minute resolution, `hour`, `minute`, `weekday` 0 = Sunday,
 *   in `policies.timeZone`), `transport`, `client`, `classification`, `label`, `approval`
 *   (`approved` after a human approved this call, else `none`), `tainted` (the session received
 *   data at or above the taint threshold).
 *
 * @throws Error when two tools declare the same resource type with different attributes, or a
 *   type name is not `[A-Z][A-Za-z0-9]*` or is reserved.
 */
export function generateCedarSchema(tools: readonly Tool<unknown>[]): SchemaJson<string> {
  const resourceTypes = new Map<string, string>();
  const entityTypes: Record<string, object> = {
    Role: {},
    Principal: {
      memberOfTypes: ['Role'],
      shape: {
        type: 'Record',
        attributes: {
          roles: { type: 'Set', element: { type: 'String' } },
          groups: { type: 'Set', element: { type: 'String' } },
          department: { type: 'String' },
          clearance: { type: 'Long' },
          clearanceLabel: { type: 'String' },
        },
      },
    },
    [SERVER_RESOURCE_TYPE]: {
      shape: {
        type: 'Record',
        attributes: { name: { type: 'String' }, ...CORE_RESOURCE_ATTRIBUTES },
      },
    },
  };
  for (const tool of tools) {
    const decl = tool.resource;
    if (!decl) continue;
    if (
      !/^[A-Z][A-Za-z0-9]{0,63}$/.test(decl.type) ||
      ['Role', 'Principal', SERVER_RESOURCE_TYPE].includes(decl.type)
    )
      throw new Error(
        `tool ${tool.name}: resource type ${decl.type} is not a usable Cedar type name`,
      );
    const attrs = decl.attributes ?? {};
    const signature = JSON.stringify(Object.entries(attrs).sort());
    const seen = resourceTypes.get(decl.type);
    if (seen !== undefined && seen !== signature)
      throw new Error(
        `resource type ${decl.type} is declared with different attributes by ${tool.name}`,
      );
    resourceTypes.set(decl.type, signature);
    for (const name of Object.keys(attrs))
      if (name in CORE_RESOURCE_ATTRIBUTES || !/^[a-z][A-Za-z0-9]*$/.test(name))
        throw new Error(
          `tool ${tool.name}: resource attribute ${name} is reserved or not an identifier`,
        );
    entityTypes[decl.type] = {
      shape: {
        type: 'Record',
        attributes: {
          ...Object.fromEntries(Object.entries(attrs).map(([k, t]) => [k, ATTRIBUTE_TYPES[t]])),
          ...CORE_RESOURCE_ATTRIBUTES,
        },
      },
    };
  }
  const actions: Record<string, object> = { read: {}, write: {}, egress: {} };
  for (const tool of tools) {
    actions[tool.name] = {
      memberOf: [{ id: tool.access }, ...(tool.egress ? [{ id: 'egress' }] : [])],
      appliesTo: {
        principalTypes: ['Principal'],
        resourceTypes: [tool.resource?.type ?? SERVER_RESOURCE_TYPE],
        context: { type: 'Context' },
      },
    };
  }
  return {
    [CEDAR_NAMESPACE]: {
      commonTypes: {
        Context: {
          type: 'Record',
          attributes: {
            time: {
              type: 'Record',
              attributes: {
                epoch: { type: 'Long' },
                hour: { type: 'Long' },
                minute: { type: 'Long' },
                weekday: { type: 'Long' },
              },
            },
            transport: { type: 'String' },
            client: { type: 'String' },
            classification: { type: 'Long' },
            label: { type: 'String' },
            approval: { type: 'String' },
            tainted: { type: 'Boolean' },
          },
        },
      },
      entityTypes,
      actions,
    },
  } as unknown as SchemaJson<string>;
}
