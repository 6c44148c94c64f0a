/**
 * The test renderer (./kustomize.ts) on small fixtures: the kustomize semantics the manifests rely
 * on (component order, strategic merge by patch merge key, null deletes, generator replace,
 * images, namespace) and its refusals (unsupported fields, a patch that matches nothing, files
 * outside the kustomization's directory, a ConfigMap name hash).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KustomizeError, kustomizeBuild, podSpec } from './kustomize.ts';

const root = mkdtempSync(join(tmpdir(), 'hmcp-kustomize-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** Writes `files` (path → text) under a fresh directory and returns it. */
function fixture(files: Record<string, string>): string {
  const dir = join(root, String(counter++));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: { tier: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: app } }
  template:
    metadata: { labels: { app: app } }
    spec:
      containers:
        - name: server
          image: example/app:1.0
          env: [{ name: A, value: "1" }]
        - name: sidecar
          image: example/sidecar:2.0
`;

describe('kustomizeBuild', () => {
  it('applies a component to the resources of the kustomization that includes it, then that kustomization transformers', () => {
    const dir = fixture({
      'component/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [policy.yaml]
patches:
  - path: harden.yaml
    target: { kind: Deployment, labelSelector: tier=web }
`,
      'component/policy.yaml': `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: deny }
spec: { podSelector: {}, policyTypes: [Ingress] }
`,
      'component/harden.yaml': `apiVersion: apps/v1
kind: Deployment
metadata: { name: ignored }
spec:
  template:
    spec:
      containers:
        - name: server
          env: [{ name: B, value: "2" }]
          securityContext: { readOnlyRootFilesystem: true }
`,
      'app/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: team
resources: [deployment.yaml]
components: [../component]
images:
  - { name: example/app, newName: registry.example/app, digest: "sha256:abc" }
patches:
  - path: replicas.yaml
`,
      'app/deployment.yaml': DEPLOYMENT,
      'app/replicas.yaml': `apiVersion: apps/v1
kind: Deployment
metadata: { name: app }
spec:
  replicas: null
`,
    });
    const objects = kustomizeBuild(join(dir, 'app'));
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.namespace}`)).toEqual([
      'Deployment/app/team',
      'NetworkPolicy/deny/team',
    ]);
    const deployment = objects[0];
    if (!deployment) throw new Error('no deployment');
    expect((deployment.spec as Record<string, unknown>).replicas).toBeUndefined(); // null deletes
    const containers = podSpec(deployment)?.containers;
    expect(containers).toEqual([
      {
        name: 'server',
        image: 'registry.example/app@sha256:abc',
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
        securityContext: { readOnlyRootFilesystem: true },
      },
      { name: 'sidecar', image: 'example/sidecar:2.0' },
    ]);
  });

  it('replaces a generated ConfigMap from an overlay and keeps its labels', () => {
    const dir = fixture({
      'base/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
configMapGenerator:
  - name: cfg
    files: [config.yaml]
    options: { disableNameSuffixHash: true, labels: { app: app } }
`,
      'base/config.yaml': 'a: 1\n',
      'overlay/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
configMapGenerator:
  - name: cfg
    behavior: replace
    files: [config.yaml]
    options: { disableNameSuffixHash: true }
`,
      'overlay/config.yaml': 'b: 2\n',
    });
    expect(kustomizeBuild(join(dir, 'overlay'))).toEqual([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cfg', labels: { app: 'app' } },
        data: { 'config.yaml': 'b: 2\n' },
      },
    ]);
  });

  const refusals: Record<string, [Record<string, string>, RegExp]> = {
    'an unsupported field': [
      {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\n',
      },
      /unsupported field namePrefix/,
    ],
    'a patch that matches nothing': [
      {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [d.yaml]\npatches: [{ path: p.yaml }]\n',
        'd.yaml': DEPLOYMENT,
        'p.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: other }\nspec: { replicas: 1 }\n',
      },
      /matches no object/,
    ],
    'a file outside the directory': [
      {
        'k/kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../d.yaml]\n',
        'd.yaml': DEPLOYMENT,
      },
      /outside the kustomization's directory/,
    ],
    'a ConfigMap name hash': [
      {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nconfigMapGenerator: [{ name: c, files: [c.yaml] }]\n',
        'c.yaml': 'a: 1\n',
      },
      /disableNameSuffixHash/,
    ],
    'a $patch directive': [
      {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [d.yaml]\npatches: [{ path: p.yaml }]\n',
        'd.yaml': DEPLOYMENT,
        'p.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: app }\nspec: { $patch: replace }\n',
      },
      /unsupported directive/,
    ],
    'the same object twice': [
      {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [d.yaml, e.yaml]\n',
        'd.yaml': DEPLOYMENT,
        'e.yaml': DEPLOYMENT,
      },
      /defined twice/,
    ],
  };
  for (const [what, [files, message]] of Object.entries(refusals)) {
    it(`refuses ${what}`, () => {
      const dir = fixture(files);
      const target = files['k/kustomization.yaml'] ? join(dir, 'k') : dir;
      expect(() => kustomizeBuild(target)).toThrow(KustomizeError);
      expect(() => kustomizeBuild(target)).toThrow(message);
    });
  }
});
