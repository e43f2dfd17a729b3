// deploy/kubernetes/: valid against the Kubernetes API schemas (kubernetes-models, the
// validator CI runs), and consistent with what the gateway needs: the capability set of
// deploy/baton.service and nothing more, probes on the admin listener, the chain file from its
// ConfigMap a valid one whose modules the image holds.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { compileChainFile, type ChainFileInput } from '../../src/chain/index.ts';
// @ts-expect-error: a plain .mjs script, no types
import { manifests, validateFile } from '../../scripts/validate-kubernetes.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MANIFEST = path.join(ROOT, 'deploy/kubernetes/baton.yaml');
const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => d.toJS());
const find = (kind: string) => docs.find((d) => d.kind === kind);
const container = find('DaemonSet').spec.template.spec.containers[0];

type Report = { doc: string; errors: string[] }[];

describe('deploy/kubernetes', () => {
  it('every manifest is valid against the Kubernetes schemas', async () => {
    const files = manifests() as string[];
    expect(files).toContain(MANIFEST);
    for (const file of files) {
      const report = (await validateFile(file)) as Report;
      expect(report.map((r) => r.doc)).toEqual(['Namespace baton', 'ConfigMap baton/baton-chain', 'ServiceAccount baton/baton', 'DaemonSet baton/baton', 'Service baton/baton']);
      expect(report.filter((r) => r.errors.length)).toEqual([]);
    }
  });

  it('the validator reports a wrong type and an unknown kind', async () => {
    const broken = readFileSync(MANIFEST, 'utf8')
      .replace('containerPort: 8080', 'containerPort: eighty')
      .replace('kind: ServiceAccount', 'kind: ServiceAcount');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'baton-k8s-')), 'broken.yaml');
    writeFileSync(file, broken);
    const invalid = ((await validateFile(file)) as Report).filter((r) => r.errors.length);
    expect(invalid).toEqual([
      { doc: 'ServiceAcount baton/baton', errors: ['no schema for apiVersion v1, kind ServiceAcount'] },
      { doc: 'DaemonSet baton/baton', errors: [expect.stringMatching(/containers\/0\/ports\/0\/containerPort must be integer/)] },
    ]);
  });

  it('the gateway container holds exactly the capabilities of deploy/baton.service, unprivileged', () => {
    const unit = readFileSync(path.join(ROOT, 'deploy/baton.service'), 'utf8');
    const caps = /^CapabilityBoundingSet=(.*)$/m.exec(unit)![1]!.split(/\s+/).map((c) => c.replace(/^CAP_/, ''));
    const sc = container.securityContext;
    expect(sc).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect([...sc.capabilities.add].sort()).toEqual([...caps].sort());
  });

  it('probes and ports are the chain file\'s listeners; the chain file compiles and its modules are in the image', () => {
    const chain = parse(find('ConfigMap').data['chain.yaml']) as ChainFileInput & { gateway: { port: number; admin: { port: number } } };
    const port = (name: string) => container.ports.find((p: { name: string }) => p.name === name).containerPort;
    expect(port('http')).toBe(chain.gateway.port);
    expect(port('admin')).toBe(chain.gateway.admin.port);
    expect([container.livenessProbe.httpGet, container.readinessProbe.httpGet]).toEqual([
      { path: '/healthz', port: 'admin' },
      { path: '/readyz', port: 'admin' },
    ]);
    expect(find('Service').spec.ports[0].targetPort).toBe('http');
    // the image holds the checkout's examples at /opt/baton (deploy/Dockerfile)
    const dockerfile = readFileSync(path.join(ROOT, 'deploy/Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^COPY --from=build \/opt\/baton\/examples examples$/m);
    expect(dockerfile).toMatch(/^WORKDIR \/opt\/baton$/m);
    const local = JSON.parse(JSON.stringify(chain).replaceAll('/opt/baton/', `${ROOT}/`)) as ChainFileInput;
    const d = compileChainFile(local, ROOT, 'the ConfigMap\'s chain.yaml');
    expect(d.functions.map((f) => f.name)).toEqual(['parse', 'transform', 'render']);
    expect(container.args).toEqual(['up', '/etc/baton/chain.yaml']);
    expect(container.volumeMounts).toContainEqual({ name: 'chain', mountPath: '/etc/baton', readOnly: true });
  });
});
