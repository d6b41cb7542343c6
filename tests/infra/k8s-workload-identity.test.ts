/**
 * The workload identity overlay (infra/k8s/overlays/azure-workload-identity), rendered as
 * `kubectl apply -k` renders it and validated against the Kubernetes and KEDA schemas: every pod
 * reaches storage as the managed identity (AzureWebJobsStorage__accountName + __credential +
 * __clientId, no connection string Secret), and KEDA reads each queue with the same identity
 * (azure-queue `accountName` + `authenticationRef` to a TriggerAuthentication with
 * `podIdentity: azure-workload`, https://keda.sh/docs/scalers/azure-storage-queue/).
 * No account key, connection string or SAS appears anywhere in it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseEnv } from 'node:querystring';
import { functionFiles, loadFunctions } from '../../scripts/local-host/loader';
import { renderIdentityPatches, WORKLOAD_IDENTITY_PATCHES } from '../../scripts/k8s';
import { envOf, K8S_DIR, kustomize, validateObject, type K8sObject } from '../helpers/k8s';

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const ROOT = path.resolve(__dirname, '../..');
const OVERLAY = path.join(K8S_DIR, 'overlays/azure-workload-identity');
const settings = parseEnv(readFileSync(path.join(OVERLAY, 'identity.env'), 'utf8').trim(), '\n', '=') as Record<
  string,
  string
>;
let objects: K8sObject[];
let text: string;
let base: K8sObject[];

beforeAll(() => {
  ({ objects, text } = kustomize(OVERLAY));
  base = kustomize(path.join(K8S_DIR, 'base')).objects;
});

const ofKind = (list: K8sObject[], kind: string) => list.filter((o) => o.kind === kind);

it('patches.yaml is what `npm run k8s` renders from the registrations and the capability table', () => {
  expect(readFileSync(WORKLOAD_IDENTITY_PATCHES, 'utf8')).toBe(
    renderIdentityPatches(loadFunctions(functionFiles(ROOT))),
  );
});

it('renders objects valid against the Kubernetes and KEDA schemas, in the pipeline namespace', () => {
  for (const o of objects) validateObject(o);
  for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace).toBe('image-pipeline');
});

it('holds no connection string, account key or SAS, and no storage Secret', () => {
  expect(text).not.toMatch(/AccountKey|DefaultEndpointsProtocol|SharedAccessSignature|sig=|connectionFromEnv/i);
  expect(text).not.toContain('image-pipeline-storage\n'); // the base's storage Secret name, as a secretKeyRef
  expect(ofKind(objects, 'Secret')).toEqual([]);
  expect(settings).toEqual({
    AzureWebJobsStorage__accountName: expect.stringMatching(/^[a-z0-9]{3,24}$/),
    AzureWebJobsStorage__credential: 'managedidentity',
    AzureWebJobsStorage__clientId: expect.stringMatching(/^[0-9a-f-]{36}$/),
  });
});

it('runs every pod as the managed identity, with the identity-based storage settings', () => {
  const deployments = ofKind(objects, 'Deployment');
  expect(deployments.map((d) => d.metadata.name).sort()).toEqual(
    ofKind(base, 'Deployment')
      .map((d) => d.metadata.name)
      .sort(),
  );
  const [config] = ofKind(objects, 'ConfigMap');
  expect(config.data).toMatchObject(settings);
  const accounts = new Map(ofKind(objects, 'ServiceAccount').map((a) => [a.metadata.name, a]));
  for (const d of deployments) {
    const pod = d.spec.template;
    expect([d.metadata.name, pod.metadata.labels['azure.workload.identity/use']]).toEqual([d.metadata.name, 'true']);
    const account = accounts.get(pod.spec.serviceAccountName);
    expect(account?.metadata.annotations?.['azure.workload.identity/client-id']).toBe(
      settings.AzureWebJobsStorage__clientId,
    );
    const env = envOf(d);
    expect(env.find((e) => /^AzureWebJobsStorage/i.test(e.name))).toBeUndefined(); // from the ConfigMap only
    expect(pod.spec.containers[0].envFrom).toEqual([{ configMapRef: { name: config.metadata.name } }]);
    expect(JSON.stringify(pod)).not.toMatch(/secretKeyRef/);
  }
  // the host keys stay in their Secret, as in the base
  const api = deployments.find((d) => d.metadata.name === 'image-pipeline-api')!;
  expect(envOf(api)).toEqual(expect.arrayContaining([{ name: 'AzureWebJobsSecretStorageType', value: 'kubernetes' }]));
});

it('scales each queue with KEDA through the identity: accountName + a TriggerAuthentication (azure-workload)', () => {
  const [auth] = ofKind(objects, 'TriggerAuthentication');
  expect(auth.spec).toEqual({
    podIdentity: { provider: 'azure-workload', identityId: settings.AzureWebJobsStorage__clientId },
  });
  const scaled = ofKind(objects, 'ScaledObject');
  const baseScaled = ofKind(base, 'ScaledObject');
  expect(scaled).toHaveLength(baseScaled.length);
  for (const so of scaled) {
    const before = baseScaled.find((b) => b.metadata.name === so.metadata.name)!;
    expect(so.spec.triggers).toEqual(
      before.spec.triggers.map((t: K8sObject['spec']) => {
        const { connectionFromEnv, ...metadata } = t.metadata as Record<string, string>;
        expect(connectionFromEnv).toBe('AzureWebJobsStorage');
        return {
          ...t,
          metadata: { ...metadata, accountName: settings.AzureWebJobsStorage__accountName },
          authenticationRef: { name: auth.metadata.name },
        };
      }),
    );
    const { triggers: _t, ...rest } = so.spec;
    const { triggers: _b, ...restBefore } = before.spec;
    expect(rest).toEqual(restBefore); // everything else as in the base
  }
});
