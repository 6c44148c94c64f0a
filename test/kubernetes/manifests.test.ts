/**
 * The Kubernetes manifests of every server (`servers/<name>/deploy/kubernetes`, base and the
 * `local` and `production` overlays, with the shared component `shared/kubernetes`), rendered the
 * way `kubectl apply -k` would (./kustomize.ts), then:
 *
 * - every object validated against its OpenAPI schema: the Kubernetes API's through
 *   `kubernetes-models`, the Prometheus operator's (ServiceMonitor, PrometheusRule) and the
 *   External Secrets Operator's (ExternalSecret, SecretStore) through their `@kubernetes-models`
 *   packages; a kind without a schema fails; those schemas let unknown fields pass, so built-in
 *   objects are also walked against `@kubernetes/client-node`'s field lists (./known-fields.ts);
 * - every pod template checked against the "restricted" Pod Security Standard and our additions
 *   (read-only root file system, requests and limits, probes on the management port);
 * - the NetworkPolicies checked as a whole: a default deny, ingress exactly from the gateway
 *   namespace to the MCP port and from the monitoring namespace to the management port, egress
 *   exactly to DNS, Redis and the server's upstream;
 * - the configuration file in the ConfigMap parsed with the server's own configuration schema,
 *   and the wiring between objects (ports, selectors, mounts, secret keys) checked;
 * - every alert expression parsed with Prometheus' PromQL grammar, using only metrics the server
 *   exports.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createServerMetrics, defineConfigSchema, parseConfig } from '@hardened-mcp/core';
import { postgresSectionSchema } from '@hardened-mcp/postgres';
import { s3SectionSchema } from '@hardened-mcp/s3';
import * as ExternalSecrets from '@kubernetes-models/external-secrets/external-secrets.io/v1';
import * as Monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import * as Apps from 'kubernetes-models/apps/v1';
import * as Autoscaling from 'kubernetes-models/autoscaling/v2';
import * as Networking from 'kubernetes-models/networking.k8s.io/v1';
import * as Policy from 'kubernetes-models/policy/v1';
import * as Core from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../support/server.ts';
import { BUILT_IN_MODELS, unknownFields } from './known-fields.ts';
import { type KubeObject, kustomizeBuild, podSpec } from './kustomize.ts';

type Json = Record<string, unknown>;

/** apiVersion/kind → a model whose `validate()` checks the object against its OpenAPI schema. */
const MODELS: Readonly<Record<string, new (data: never) => { validate(): void }>> = {
  'v1/Namespace': Core.Namespace,
  'v1/ServiceAccount': Core.ServiceAccount,
  'v1/Service': Core.Service,
  'v1/ConfigMap': Core.ConfigMap,
  'v1/Secret': Core.Secret,
  'apps/v1/Deployment': Apps.Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': Autoscaling.HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': Policy.PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': Networking.NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': Monitoring.ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': Monitoring.PrometheusRule,
  'external-secrets.io/v1/ExternalSecret': ExternalSecrets.ExternalSecret,
  'external-secrets.io/v1/SecretStore': ExternalSecrets.SecretStore,
};

const SERVERS = {
  postgres: {
    schema: defineConfigSchema('postgres', postgresSectionSchema),
    /** Egress besides DNS and Redis, per overlay. */
    upstream: (overlay: string) => [
      'ns=database,pod=app.kubernetes.io/name=postgresql TCP/5432',
      ...(overlay === 'production' ? ['public-ipv4 TCP/443'] : []),
    ],
  },
  s3: {
    schema: defineConfigSchema('s3', s3SectionSchema),
    upstream: (overlay: string) =>
      overlay === 'local'
        ? ['ns=s3,pod=app.kubernetes.io/name=minio TCP/9000']
        : ['public-ipv4 TCP/443'],
  },
} as const;

const OVERLAYS = ['base', 'local', 'production'] as const;
const PRIVATE_AND_LOCAL = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '127.0.0.0/8',
];
/** The volume types the restricted profile allows (Pod Security Standards, "Volume Types"). */
const RESTRICTED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

/** The series names the server exports (histograms as `_bucket`, `_sum`, `_count`). */
const SERVER_METRICS = (() => {
  const metrics = createServerMetrics([]).registry.getMetricsAsArray();
  return metrics.flatMap((m) =>
    String(m.type) === 'histogram'
      ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]
      : [m.name],
  );
})();

/** The positions of PromQL syntax errors in an expression (Prometheus' own lezer grammar). */
function promqlErrors(expr: string): number[] {
  const errors: number[] = [];
  promqlParser.parse(expr).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
    },
  });
  return errors;
}

function deployDir(server: string, overlay: string): string {
  const root = join(REPO_ROOT, 'servers', server, 'deploy', 'kubernetes');
  return overlay === 'base' ? join(root, 'base') : join(root, 'overlays', overlay);
}

function one(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`)).toHaveLength(1);
  return found[0] as KubeObject;
}

function map(value: unknown): Json {
  expect(value, 'expected a mapping').toBeTypeOf('object');
  return value as Json;
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? (value as Json[]) : [];
}

function matches(selector: unknown, labels: Record<string, string>): boolean {
  const s = (selector ?? {}) as { matchLabels?: Record<string, string>; matchExpressions?: [] };
  expect(s.matchExpressions, 'only matchLabels are used').toBeUndefined();
  return Object.entries(s.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/** One NetworkPolicy peer as a stable string. */
function peer(p: Json): string {
  if (p.ipBlock) {
    const block = map(p.ipBlock);
    expect(Object.keys(p)).toEqual(['ipBlock']);
    expect(block.cidr).toBe('0.0.0.0/0');
    expect([...list(block.except)].sort()).toEqual([...PRIVATE_AND_LOCAL].sort());
    return 'public-ipv4';
  }
  const parts: string[] = [];
  const ns = (p.namespaceSelector as { matchLabels?: Json } | undefined)?.matchLabels;
  expect(ns, 'every peer names its namespace').toBeDefined();
  expect(Object.keys(ns ?? {})).toEqual(['kubernetes.io/metadata.name']);
  parts.push(`ns=${String(ns?.['kubernetes.io/metadata.name'])}`);
  const pod = (p.podSelector as { matchLabels?: Json } | undefined)?.matchLabels;
  if (pod)
    parts.push(
      `pod=${Object.entries(pod)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(',')}`,
    );
  return parts.join(',');
}

/** Every (peer, port) pair a list of NetworkPolicy rules allows, as strings. */
function pairs(rules: Json[], peerKey: 'from' | 'to'): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    const peers = list(rule[peerKey]);
    const ports = list(rule.ports);
    expect(peers.length, `a rule without ${peerKey} allows every peer`).toBeGreaterThan(0);
    expect(ports.length, 'a rule without ports allows every port').toBeGreaterThan(0);
    for (const p of peers) {
      for (const port of ports) {
        expect(port.endPort).toBeUndefined();
        out.push(`${peer(p)} ${String(port.protocol ?? 'TCP')}/${String(port.port)}`);
      }
    }
  }
  return out.sort();
}

for (const [server, spec] of Object.entries(SERVERS)) {
  for (const overlay of OVERLAYS) {
    describe(`${server} ${overlay}`, () => {
      const objects = kustomizeBuild(deployDir(server, overlay));
      const name = `hardened-mcp-${server}`;
      const deployment = one(objects, 'Deployment', name);
      const pod = map(podSpec(deployment));
      const template = map(map(deployment.spec).template);
      const podLabels = map(template.metadata).labels as Record<string, string>;
      const containers = list(pod.containers);
      const container = map(containers.find((c) => c.name === 'server'));
      const containerPorts = Object.fromEntries(
        list(container.ports).map((p) => [String(p.name), Number(p.containerPort)]),
      );
      const configMap = one(objects, 'ConfigMap', `${name}-config`);
      const configText = String(map(configMap.data)['config.yaml']);
      const config = parseConfig(spec.schema, parseYaml(configText)) as unknown as {
        transport: string;
        http: { host: string; port: number; management: { host: string; port: number } };
        auth: { mode: string };
        credentials: { read?: { file?: string }; write?: { file?: string } };
      };

      it('renders only kinds with a schema, each valid against it', () => {
        expect(objects.length).toBeGreaterThan(8);
        for (const o of objects) {
          const Model = MODELS[`${o.apiVersion}/${o.kind}`];
          expect(Model, `no schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
          expect(() =>
            new (Model as NonNullable<typeof Model>)(o as never).validate(),
          ).not.toThrow();
        }
      });

      it('uses no field the Kubernetes API does not define (built-in kinds)', () => {
        for (const o of objects) {
          const type = BUILT_IN_MODELS[`${o.apiVersion}/${o.kind}`];
          if (!type) continue; // CRDs: their schemas above
          expect(unknownFields(o, type), `${o.kind}/${o.metadata.name}`).toEqual([]);
        }
      });

      it('has one server Deployment with a Service, ServiceAccount, HPA, PDB, ServiceMonitor and PrometheusRule', () => {
        const kinds = new Set(objects.map((o) => o.kind));
        for (const kind of [
          'Deployment',
          'Service',
          'ServiceAccount',
          'ConfigMap',
          'HorizontalPodAutoscaler',
          'PodDisruptionBudget',
          'NetworkPolicy',
          'ServiceMonitor',
          'PrometheusRule',
        ]) {
          expect(kinds, kind).toContain(kind);
        }
        expect(objects.filter((o) => o.kind === 'Deployment')).toHaveLength(1);
        expect(containers).toHaveLength(1);
        expect(pod.initContainers).toBeUndefined();
        if (overlay !== 'base') {
          for (const o of objects.filter((x) => x.kind !== 'Namespace')) {
            expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('hardened-mcp');
          }
          const ns = one(objects, 'Namespace', 'hardened-mcp');
          expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
        }
      });

      it('meets the restricted Pod Security Standard, with a read-only root, limits and probes', () => {
        // Pod Security Standards, "Restricted" (and "Baseline", which it includes).
        for (const key of ['hostNetwork', 'hostPID', 'hostIPC'])
          expect(pod[key] ?? false, key).toBe(false);
        const podSecurity = map(pod.securityContext);
        expect(podSecurity.runAsNonRoot).toBe(true);
        expect(podSecurity.runAsUser).toBe(65532); // the images' `nonroot` user
        expect(podSecurity.runAsGroup).toBe(65532);
        expect(podSecurity.fsGroup).toBe(65532);
        expect(map(podSecurity.seccompProfile).type).toBe('RuntimeDefault');
        expect(podSecurity.sysctls).toBeUndefined();
        expect(podSecurity.seLinuxOptions).toBeUndefined();
        expect(pod.automountServiceAccountToken).toBe(false);
        for (const volume of list(pod.volumes)) {
          const types = Object.keys(volume).filter((k) => k !== 'name');
          expect(types).toHaveLength(1);
          expect(RESTRICTED_VOLUMES, `volume ${String(volume.name)}`).toContain(types[0]);
        }
        for (const c of containers) {
          const sc = map(c.securityContext);
          expect(sc.allowPrivilegeEscalation).toBe(false);
          expect(sc.privileged ?? false).toBe(false);
          expect(sc.readOnlyRootFilesystem).toBe(true);
          expect(sc.runAsNonRoot).toBe(true);
          expect(sc.runAsUser ?? 65532).not.toBe(0);
          expect(map(sc.capabilities).drop).toEqual(['ALL']);
          expect(map(sc.capabilities).add).toBeUndefined();
          expect(map(sc.seccompProfile ?? { type: 'RuntimeDefault' }).type).toBe('RuntimeDefault');
          expect(sc.procMount).toBeUndefined();
          expect(sc.appArmorProfile).toBeUndefined();
          for (const p of list(c.ports)) expect(p.hostPort, 'no host ports').toBeUndefined();
          const resources = map(c.resources);
          for (const part of ['requests', 'limits']) {
            expect(map(resources[part]).cpu, `${part}.cpu`).toBeDefined();
            expect(map(resources[part]).memory, `${part}.memory`).toBeDefined();
          }
        }
        // Probes on the management listener: /healthz (startup, liveness), /readyz (readiness).
        for (const [probe, path] of [
          ['startupProbe', '/healthz'],
          ['livenessProbe', '/healthz'],
          ['readinessProbe', '/readyz'],
        ] as const) {
          const get = map(map(container[probe]).httpGet);
          expect(get.path, probe).toBe(path);
          expect(get.port, probe).toBe('management');
        }
      });

      it('runs the configuration in the ConfigMap, valid for the server, on the ports the pod exposes', () => {
        expect(config.transport).toBe('http');
        expect(containerPorts).toEqual({
          mcp: config.http.port,
          management: config.http.management.port,
        });
        expect(config.http.management.host).toBe('0.0.0.0'); // the kubelet probes the pod's address
        expect(container.args).toEqual(['--config', '/etc/hardened-mcp/config.yaml']);
        const mounts = list(container.volumeMounts);
        const configMount = map(mounts.find((m) => m.mountPath === '/etc/hardened-mcp'));
        expect(configMount.readOnly).toBe(true);
        const configVolume = map(list(pod.volumes).find((v) => v.name === configMount.name));
        expect(map(configVolume.configMap).name).toBe(configMap.metadata.name);
        for (const m of mounts) expect(m.readOnly, String(m.mountPath)).toBe(true);
        if (overlay === 'local') {
          expect(config.auth.mode).toBe('none');
          expect(config.http.host).toBe('127.0.0.1'); // reached with kubectl port-forward only
        } else {
          expect(config.auth.mode).toBe('oauth');
          expect(config.http.host).toBe('0.0.0.0');
        }
      });

      it('mounts every credential file from a Secret that is not readable by others and holds its key', () => {
        const files = [config.credentials.read?.file, config.credentials.write?.file].filter(
          (f): f is string => typeof f === 'string',
        );
        const env = list(container.env);
        const sharedCredentials = env.find((e) => e.name === 'AWS_SHARED_CREDENTIALS_FILE');
        if (sharedCredentials) files.push(String(sharedCredentials.value));
        if (server === 'postgres') expect(files).toHaveLength(1);
        for (const file of files) {
          const mount = map(
            list(container.volumeMounts).find((m) => file.startsWith(`${String(m.mountPath)}/`)),
          );
          const key = file.slice(String(mount.mountPath).length + 1);
          const volume = map(list(pod.volumes).find((v) => v.name === mount.name));
          const secret = map(volume.secret);
          expect(Number(secret.defaultMode) & 0o007, 'no access for others').toBe(0);
          if (overlay === 'base') continue; // the overlay provides the Secret
          const plain = objects.find(
            (o) => o.kind === 'Secret' && o.metadata.name === secret.secretName,
          );
          const external = objects.find(
            (o) =>
              o.kind === 'ExternalSecret' && map(map(o.spec).target).name === secret.secretName,
          );
          expect(Boolean(plain) !== Boolean(external), 'exactly one source of the Secret').toBe(
            true,
          );
          if (plain) expect(Object.keys(map(plain.stringData))).toContain(key);
          if (external) {
            expect(list(map(external.spec).data).map((d) => d.secretKey)).toContain(key);
            const storeRef = map(map(external.spec).secretStoreRef);
            const store = one(objects, String(storeRef.kind), String(storeRef.name));
            expect(map(map(map(store.spec).provider).aws).service).toBe('SecretsManager');
          }
        }
      });

      it('keeps the service account token out and wires Service, HPA, PDB and ServiceMonitor to the pods', () => {
        const account = one(objects, 'ServiceAccount', String(pod.serviceAccountName));
        expect(account.automountServiceAccountToken).toBe(false);
        for (const o of objects.filter((x) => x.kind === 'ServiceAccount')) {
          expect(o.automountServiceAccountToken, o.metadata.name).toBe(false);
        }
        expect(matches(map(deployment.spec).selector, podLabels)).toBe(true);
        const service = one(objects, 'Service', name);
        const serviceSpec = map(service.spec);
        expect(serviceSpec.type).toBe('ClusterIP');
        expect(matches({ matchLabels: serviceSpec.selector }, podLabels)).toBe(true);
        const servicePorts = list(serviceSpec.ports);
        expect(servicePorts.map((p) => p.targetPort).sort()).toEqual(['management', 'mcp']);
        const hpa = map(one(objects, 'HorizontalPodAutoscaler', name).spec);
        expect(map(hpa.scaleTargetRef)).toEqual({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name,
        });
        // The HPA owns the count: a Deployment `replicas` would reset a scaled-up count to itself
        // on every `kubectl apply` (Kubernetes docs, "Horizontal Pod Autoscaling", migrating
        // Deployments to horizontal autoscaling).
        expect(map(deployment.spec).replicas).toBeUndefined();
        const replicas = Number(hpa.minReplicas);
        expect(replicas).toBeGreaterThanOrEqual(1);
        expect(Number(hpa.maxReplicas)).toBeGreaterThanOrEqual(replicas);
        const pdb = map(one(objects, 'PodDisruptionBudget', name).spec);
        expect(matches(pdb.selector, podLabels)).toBe(true);
        // A drain can always proceed: at least one replica may be disrupted.
        if (pdb.minAvailable !== undefined) expect(Number(pdb.minAvailable)).toBeLessThan(replicas);
        else expect(Number(pdb.maxUnavailable)).toBeGreaterThanOrEqual(1);
        const monitor = map(one(objects, 'ServiceMonitor', name).spec);
        expect(matches(monitor.selector, service.metadata.labels ?? {})).toBe(true);
        expect(list(monitor.endpoints).map((e) => [e.port, e.path])).toEqual([
          ['management', '/metrics'],
        ]);
        const rules = list(map(one(objects, 'PrometheusRule', name).spec).groups).flatMap((g) =>
          list(g.rules),
        );
        expect(rules.length).toBeGreaterThan(2);
        for (const rule of rules) {
          const expr = String(rule.expr);
          expect(expr).toContain(`job="${name}"`);
          expect(promqlErrors(expr), `${String(rule.alert)}: ${expr}`).toEqual([]);
          for (const metric of expr.match(/\bhmcp_\w+/g) ?? []) {
            expect(SERVER_METRICS, `${String(rule.alert)} uses ${metric}`).toContain(metric);
          }
        }
      });

      it('allows exactly the gateway, monitoring, DNS, Redis and upstream traffic (default deny)', () => {
        const policies = objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => map(o.spec));
        for (const p of policies) expect(p.policyTypes, 'explicit policyTypes').toBeDefined();
        const applying = policies.filter((p) => matches(p.podSelector, podLabels));
        const denyAll = applying.filter(
          (p) =>
            Object.keys(map(p.podSelector)).length === 0 &&
            p.ingress === undefined &&
            p.egress === undefined,
        );
        expect(denyAll).toHaveLength(1);
        expect([...list(denyAll[0]?.policyTypes)].sort()).toEqual(['Egress', 'Ingress']);
        const ingress = pairs(
          applying
            .filter((p) => (p.policyTypes as unknown[]).includes('Ingress'))
            .flatMap((p) => list(p.ingress)),
          'from',
        );
        expect(ingress).toEqual(['ns=mcp-gateway TCP/mcp', 'ns=monitoring TCP/management']);
        const egress = pairs(
          applying
            .filter((p) => (p.policyTypes as unknown[]).includes('Egress'))
            .flatMap((p) => list(p.egress)),
          'to',
        );
        expect(egress).toEqual(
          [
            'ns=kube-system,pod=k8s-app=kube-dns TCP/53',
            'ns=kube-system,pod=k8s-app=kube-dns UDP/53',
            'ns=redis,pod=app.kubernetes.io/name=redis TCP/6379',
            ...spec.upstream(overlay),
          ].sort(),
        );
      });

      if (overlay === 'local') {
        it('local: one replica, the image built locally', () => {
          const hpa = map(one(objects, 'HorizontalPodAutoscaler', name).spec);
          expect([hpa.minReplicas, hpa.maxReplicas]).toEqual([1, 1]);
          expect(container.image).toBe(`hardened-mcp/${server}:dev`);
        });
      }
      if (overlay === 'production') {
        it('production: three replicas spread over zones and nodes, Redis, the released image', () => {
          expect(map(one(objects, 'HorizontalPodAutoscaler', name).spec).minReplicas).toBe(3);
          const spread = list(pod.topologySpreadConstraints);
          expect(spread.map((s) => s.topologyKey).sort()).toEqual([
            'kubernetes.io/hostname',
            'topology.kubernetes.io/zone',
          ]);
          for (const s of spread) expect(matches(s.labelSelector, podLabels)).toBe(true);
          const redis = list(container.env).find((e) => e.name === 'REDIS_URL');
          expect(String(redis?.value)).toMatch(/^rediss?:\/\/[^@]+$/); // no password in the manifest
          expect(container.image).toBe(`registry.example/owner/hardened-mcp/${server}:0.1.0`);
        });
      }
    });
  }
}

describe('the manifest files', () => {
  const roots = [
    join(REPO_ROOT, 'shared', 'kubernetes'),
    ...Object.keys(SERVERS).map((s) => join(REPO_ROOT, 'servers', s, 'deploy', 'kubernetes')),
  ];
  const files = roots.flatMap(function walk(dir: string): string[] {
    return readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? walk(path) : path.endsWith('.yaml') ? [path] : [];
    });
  });

  it('read the same in YAML 1.1 (kubectl) and YAML 1.2 (these tests): no octal or yes/no surprises', () => {
    expect(files.length).toBeGreaterThan(20);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const v12 = parseAllDocuments(text).map((d) => d.toJS());
      const v11 = parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS());
      expect(v11, relative(REPO_ROOT, file)).toEqual(v12);
    }
  });

  it('hold no shared part twice: the security context and default deny live only in the component', () => {
    for (const file of files.filter((f) => !f.includes(join('shared', 'kubernetes')))) {
      const text = readFileSync(file, 'utf8');
      for (const marker of [
        'readOnlyRootFilesystem',
        'seccompProfile',
        'livenessProbe',
        'podSelector: {}',
      ]) {
        expect(text, `${relative(REPO_ROOT, file)} repeats ${marker}`).not.toContain(marker);
      }
    }
  });
});
