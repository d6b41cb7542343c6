/**
 * The Kubernetes manifests, rendered the way `kubectl apply -k` renders them, validated against
 * the Kubernetes and KEDA schemas, and checked for the invariants the pipeline depends on.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CAPABILITIES, poisonFunctionName, workerFunctionName } from '../../shared/capabilities';
import { functionFiles, loadFunctions } from '../../scripts/local-host/loader';
import type { RegisteredFunction } from '../../scripts/local-host/functions-core';
import {
  DRAIN_DEADLINE_SECONDS,
  FUNCTION_TIMEOUT_SECONDS,
  HTTP_PORT,
  KEYS_SECRET,
  MASTER_KEY_FILE,
  renderRoles,
  ROLES_FILE,
} from '../../scripts/k8s';
import { envOf, K8S_DIR, kustomize, selectedFunctionsOf, validateObject, type K8sObject } from '../helpers/k8s';
import { resourceNames } from '../../shared/storage/names';

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const ROOT = path.resolve(__dirname, '../..');
const names = resourceNames('');
let functions: readonly RegisteredFunction[];
const renders: Record<string, { text: string; objects: K8sObject[] }> = {};
const OVERLAYS = ['base', 'overlays/local', 'overlays/azure'];

beforeAll(() => {
  functions = loadFunctions(functionFiles(ROOT));
  for (const dir of OVERLAYS) renders[dir] = kustomize(path.join(K8S_DIR, dir));
});

const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const functionsImage = (o: K8sObject) =>
  o.kind === 'Deployment' && o.metadata.labels?.['app.kubernetes.io/name'] === 'image-pipeline';

it('roles.yaml is what `npm run k8s` renders from the registrations and the capability table', () => {
  expect(readFileSync(ROLES_FILE, 'utf8')).toBe(renderRoles(functions));
});

it('runs the retention timer beside the metrics timer, in the one Deployment that runs timers', () => {
  const rendered = parseAllDocuments(renderRoles(functions)).map((d) => d.toJSON() as K8sObject);
  const timers = rendered.filter((o) => o.kind === 'Deployment' && selectedFunctionsOf(o).includes('applyRetention'));
  expect(timers.map((d) => [d.metadata.name, selectedFunctionsOf(d), d.spec.replicas])).toEqual([
    ['image-pipeline-metrics', ['applyRetention', 'callbackPoison', 'collectMetrics', 'deliverCallback'], 1],
  ]);
});

describe.each(OVERLAYS)('%s', (dir) => {
  const render = () => renders[dir];
  const apps = () => render().objects.filter(functionsImage);

  it('renders objects that are valid against the Kubernetes and KEDA schemas, all in one namespace', () => {
    const { objects } = render();
    expect(objects.length).toBeGreaterThan(5);
    for (const o of objects) validateObject(o);
    for (const o of objects.filter((x) => x.kind !== 'Namespace'))
      expect([o.kind, o.metadata.name, o.metadata.namespace]).toEqual([o.kind, o.metadata.name, 'image-pipeline']);
  });

  it('has a ScaledObject per capability queue, aimed at a Deployment that runs exactly that capability', () => {
    const scaled = ofKind(render().objects, 'ScaledObject');
    expect(scaled).toHaveLength(CAPABILITIES.length);
    for (const capability of CAPABILITIES) {
      const so = scaled.find((s) => s.spec.triggers[0].metadata.queueName === names.queueOf(capability.name));
      expect(so).toBeDefined();
      const { spec } = so!;
      expect(
        spec.triggers.map((t: K8sObject['spec']) => [t.type, t.metadata.queueName, t.metadata.connectionFromEnv]),
      ).toEqual([
        ['azure-queue', names.queueOf(capability.name), 'AzureWebJobsStorage'],
        ['azure-queue', names.poisonQueueOf(capability.name), 'AzureWebJobsStorage'],
      ]);
      expect(spec.triggers[0].metadata).toMatchObject({
        queueLength: String(capability.scaling.queueLength),
        activationQueueLength: String(capability.scaling.activationQueueLength),
      });
      expect(spec.minReplicaCount).toBe(0);
      expect(spec.maxReplicaCount).toBeGreaterThanOrEqual(1);
      expect(spec.maxReplicaCount).toBeLessThanOrEqual(capability.scaling.maxReplicas);
      const { scaleUp, scaleDown } = spec.advanced.horizontalPodAutoscalerConfig.behavior;
      expect(scaleUp.stabilizationWindowSeconds).toBe(0);
      expect(scaleDown.stabilizationWindowSeconds).toBe(60);

      const target = apps().find((d) => d.metadata.name === spec.scaleTargetRef.name);
      expect(target).toBeDefined();
      expect(selectedFunctionsOf(target!).sort()).toEqual([
        poisonFunctionName(capability.name),
        workerFunctionName(capability.name),
      ]);
      // … and those functions listen on the queues KEDA watches
      const listening = functions
        .filter((f) => selectedFunctionsOf(target!).includes(f.name))
        .map((f) => f.trigger.queueName)
        .sort();
      expect(listening).toEqual([names.queueOf(capability.name), names.poisonQueueOf(capability.name)].sort());
      // KEDA owns the replica count
      expect(target!.spec.replicas).toBeUndefined();
      // connectionFromEnv is resolved from the target's container
      expect(envOf(target!).map((e) => e.name)).toContain('AzureWebJobsStorage');
    }
  });

  it('runs every registered function in exactly one Deployment, and only functions that exist', () => {
    const selected = apps().flatMap(selectedFunctionsOf);
    expect([...selected].sort()).toEqual(functions.map((f) => f.name).sort());
    expect(new Set(selected).size).toBe(selected.length);
    for (const d of apps()) expect(selectedFunctionsOf(d).length).toBeGreaterThan(0);
  });

  it('runs the metrics timer in one Deployment with exactly 1 replica and no autoscaler', () => {
    const timers = functions.filter((f) => f.trigger.type === 'timerTrigger').map((f) => f.name);
    const owners = apps().filter((d) => selectedFunctionsOf(d).some((fn) => timers.includes(fn)));
    expect(owners).toHaveLength(1);
    expect(owners[0].spec.replicas).toBe(1);
    expect(owners[0].spec.strategy?.type).toBe('Recreate');
    expect(ofKind(render().objects, 'ScaledObject').map((s) => s.spec.scaleTargetRef.name)).not.toContain(
      owners[0].metadata.name,
    );
    expect(ofKind(render().objects, 'HorizontalPodAutoscaler')).toEqual([]);
  });

  it('gives every Deployment the same image, settings, storage secret and host id', () => {
    const deployments = apps();
    expect(deployments.length).toBe(CAPABILITIES.length + 2);
    const containers = deployments.map((d) => d.spec.template.spec.containers[0]);
    expect(new Set(containers.map((c) => c.image)).size).toBe(1);
    expect(new Set(containers.map((c) => JSON.stringify(c.envFrom))).size).toBe(1);
    const storageRefs = deployments.map((d) =>
      JSON.stringify(envOf(d).find((e) => e.name === 'AzureWebJobsStorage')?.valueFrom),
    );
    expect(new Set(storageRefs).size).toBe(1);
    expect(storageRefs[0]).toContain('secretKeyRef');
    // the host id comes from the one ConfigMap all of them load, and nothing overrides it
    const configMaps = ofKind(render().objects, 'ConfigMap');
    const config = configMaps.find((c) => c.metadata.name === containers[0].envFrom[0].configMapRef.name);
    expect(config?.data.AzureFunctionsWebHost__hostid).toMatch(/^[a-z0-9-]{1,32}$/);
    for (const c of containers)
      expect(c.env.map((e: { name: string }) => e.name)).not.toContain('AzureFunctionsWebHost__hostid');
    // the port the host listens on (infra/Dockerfile) is the one probes and the Service use
    for (const c of containers) {
      expect(c.ports).toEqual([{ name: 'http', containerPort: HTTP_PORT }]);
      for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) expect(probe.httpGet.port).toBe('http');
      expect(c.resources.limits.memory).toBeDefined();
      expect(c.securityContext.runAsNonRoot).toBe(true);
    }
  });

  it('drains every worker before it stops: preStop drain with the master key, a grace period past functionTimeout', () => {
    const hostJson = JSON.parse(readFileSync(path.join(ROOT, 'host.json'), 'utf8')) as { functionTimeout: string };
    const [h, m, sec] = hostJson.functionTimeout.split(':').map(Number);
    expect(FUNCTION_TIMEOUT_SECONDS).toBe(h * 3600 + m * 60 + sec);
    const workers = apps().filter((d) => d.metadata.labels!['app.kubernetes.io/component'].startsWith('worker-'));
    expect(workers).toHaveLength(CAPABILITIES.length);
    for (const w of workers) {
      const pod = w.spec.template.spec;
      const c = pod.containers[0];
      const command: string[] = c.lifecycle.preStop.exec.command;
      // node -e <script> <port> <key file> <deadline>: the script POSTs /admin/host/drain and polls its status
      expect(command.slice(0, 2)).toEqual(['node', '-e']);
      expect(command[2]).toContain('/admin/host/drain');
      expect(command[2]).toContain('/status');
      expect(command[2]).toContain("'x-functions-key'");
      expect(command.slice(3)).toEqual([String(HTTP_PORT), MASTER_KEY_FILE, String(DRAIN_DEADLINE_SECONDS)]);
      expect(c.ports[0].containerPort).toBe(HTTP_PORT);
      // the key file is host.master of the function-keys Secret, mounted read-only where the host reads it
      const mount = c.volumeMounts.find((v: { mountPath: string }) => MASTER_KEY_FILE.startsWith(`${v.mountPath}/`));
      expect(mount?.readOnly).toBe(true);
      expect(path.posix.basename(MASTER_KEY_FILE)).toBe('host.master');
      const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
      expect(volume.secret.secretName).toBe(KEYS_SECRET);
      // optional: the API host creates the Secret; a worker must not wait for it to start
      expect(volume.secret.optional).toBe(true);
      const env = Object.fromEntries(envOf(w).map((e) => [e.name, e.value]));
      expect(env.AzureWebJobsSecretStorageType).toBe('kubernetes');
      expect(env.AzureWebJobsKubernetesSecretName).toBeUndefined(); // read-only, from the mounted files
      // the drain may wait for the longest invocation; the grace period adds the host's shutdown
      expect(DRAIN_DEADLINE_SECONDS).toBeGreaterThan(FUNCTION_TIMEOUT_SECONDS);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(DRAIN_DEADLINE_SECONDS + 30);
    }
  });

  it('never uses UseDevelopmentStorage (KEDA cannot resolve it)', () => {
    expect(render().text).not.toMatch(/UseDevelopmentStorage/i);
  });
});

it('local: the storage Secret names Azurite endpoints that a Service in the overlay serves', () => {
  const { objects } = renders['overlays/local'];
  const secret = ofKind(objects, 'Secret').find((s) => s.metadata.name.startsWith('image-pipeline-storage'));
  expect(secret).toBeDefined();
  const connection = Buffer.from(secret!.data.AzureWebJobsStorage.replace(/\s+/g, ''), 'base64').toString();
  const service = ofKind(objects, 'Service').find((s) => s.metadata.name === 'azurite')!;
  for (const [key, port] of [
    ['BlobEndpoint', 10000],
    ['QueueEndpoint', 10001],
    ['TableEndpoint', 10002],
  ] as const) {
    const url = new URL(new RegExp(`${key}=([^;]+)`).exec(connection)![1]);
    expect([url.hostname, Number(url.port)]).toEqual(['azurite', port]);
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toContain(port);
  }
  expect(connection).toMatch(/AccountName=devstoreaccount1;AccountKey=/);
  // the Deployments reference the generated (hash-suffixed) name
  for (const d of objects.filter(functionsImage))
    expect(envOf(d).find((e) => e.name === 'AzureWebJobsStorage')!.valueFrom.secretKeyRef.name).toBe(
      secret!.metadata.name,
    );
  const pvc = ofKind(objects, 'PersistentVolumeClaim');
  expect(pvc.map((p) => p.metadata.name)).toEqual(['azurite-data']);
});

it('azure: carries no storage Secret, so an apply never overwrites the one you created', () => {
  const { objects } = renders['overlays/azure'];
  expect(ofKind(objects, 'Secret')).toEqual([]);
  for (const d of objects.filter(functionsImage))
    expect(envOf(d).find((e) => e.name === 'AzureWebJobsStorage')!.valueFrom.secretKeyRef.name).toBe(
      'image-pipeline-storage',
    );
});

it('the API keeps function keys in a Secret it may read and write, through its own service account', () => {
  const { objects } = renders.base;
  const api = objects.find((o) => o.kind === 'Deployment' && selectedFunctionsOf(o).includes('submitJob'))!;
  const env = Object.fromEntries(envOf(api).map((e) => [e.name, e.value]));
  expect(env.AzureWebJobsSecretStorageType).toBe('kubernetes');
  const account = api.spec.template.spec.serviceAccountName;
  const binding = ofKind(objects, 'RoleBinding').find((b) =>
    b.subjects.some((s: { name: string }) => s.name === account),
  )!;
  const role = ofKind(objects, 'Role').find((r) => r.metadata.name === binding.roleRef.name)!;
  expect(role.rules[0]).toMatchObject({
    resources: ['secrets'],
    verbs: expect.arrayContaining(['get', 'create', 'update', 'watch']),
  });
  const service = ofKind(objects, 'Service').find(
    (s) => s.spec.selector['app.kubernetes.io/component'] === api.metadata.labels!['app.kubernetes.io/component'],
  )!;
  expect(service.spec.ports[0].targetPort).toBe('http');
  // only HTTP functions in the API
  const http = functions
    .filter((f) => f.trigger.type === 'httpTrigger')
    .map((f) => f.name)
    .sort();
  expect([...selectedFunctionsOf(api)].sort()).toEqual(http);
});
