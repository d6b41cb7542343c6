/**
 * Generates the role-specific Kubernetes manifests (infra/k8s/base/roles.yaml) from the code:
 * the function registration table decides which functions each Deployment runs, and the
 * capability table gives one worker Deployment and one KEDA ScaledObject per capability.
 *
 * Roles, by trigger:
 * - api: every HTTP function (Deployment + Service, keys in a Kubernetes Secret)
 * - worker-<capability>: the capability's queue worker and poison functions, scaled by KEDA on
 *   its queue (and its poison queue, so dead letters are recorded even at zero replicas)
 * - metrics: the timer functions (collectMetrics, applyRetention) and the completion callbacks' queue
 *   functions (light: a table read and an HTTP POST per message), exactly one replica, never autoscaled
 * A function that fits no role stops the generator: every function must run somewhere.
 *
 * `npm run k8s` rewrites the file; a test fails when it differs from what this script renders.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { CAPABILITIES, type Capability } from '../shared/capabilities';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IDeploymentSpec } from 'kubernetes-models/apps/v1/DeploymentSpec';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { RegisteredFunction } from './local-host/functions-core';
import { functionFiles, loadFunctions } from './local-host/loader';
import { PROJECT_ROOT, writeGenerated } from './paths';
import { resourceNames } from '../shared/storage/names';
import { readHostConfig } from './local-host/host-config';

export const ROLES_FILE = path.join(PROJECT_ROOT, 'infra/k8s/base/roles.yaml');
export const APP = 'image-pipeline';
/** The image every Deployment runs; overlays change it with kustomize `images:`. */
export const IMAGE = APP;
/** The host listens here (ASPNETCORE_URLS in infra/Dockerfile): a non-root process cannot bind 80. */
export const HTTP_PORT = 8080;
export const STORAGE_SECRET = `${APP}-storage`;
export const CONFIG_MAP = `${APP}-config`;
export const KEYS_SECRET = `${APP}-function-keys`;

/**
 * Workers read the host keys from the Secret mounted here (the API host creates and fills it).
 * The real host reads this directory when AzureWebJobsSecretStorageType=kubernetes and no
 * AzureWebJobsKubernetesSecretName is set: KubernetesSecretsDir in
 * Azure/azure-functions-host src/WebJobs.Script.WebHost/Security/KeyManagement/SimpleKubernetesClient.cs
 * (commit 89dc438d476542786f2fc4070f553423213a6223); the master key is the file `host.master`
 * (KubernetesSecretsRepository.cs, same folder).
 */
export const KEYS_DIR = '/run/secrets/functions-keys';
export const MASTER_KEY_FILE = `${KEYS_DIR}/host.master`;

/**
 * Scale-in timing for a worker pod. When Kubernetes stops it, the preStop hook puts the host in
 * drain mode (its queue listeners stop fetching; invocations in flight run to the end) and waits
 * until the host says the drain is complete; then the container gets SIGTERM and the host shuts
 * down (stopping the Node worker, which runs appTerminate). The longest an invocation may run is
 * host.json functionTimeout (10 min), whatever the capability, so:
 * - the drain waits at most functionTimeout + DRAIN_SLACK_SECONDS (the drain request itself and
 *   the listeners stopping);
 * - the grace period adds SHUTDOWN_SECONDS for the host's own shutdown after SIGTERM (it gives the
 *   language worker 10 s, ProcessShutdownTimeout in WorkerProcessCountOptions.cs, and the gRPC
 *   server 5 s, RpcInitializationService.cs).
 * A pod that is idle drains at once: the long grace period costs nothing unless a task is running.
 *
 * Why a preStop wait and not only SIGTERM: in a pod (KUBERNETES_SERVICE_HOST set) the host also
 * starts drain mode when it is stopping (RegisterApplicationLifetimeEvents in
 * src/WebJobs.Script.WebHost/WebJobsScriptHostService.cs, DrainOnApplicationStoppingEnabled in
 * src/WebJobs.Script/Environment/EnvironmentExtensions.cs), but it does not wait for the drain: the
 * shutdown is bounded by the .NET generic host's ShutdownTimeout, which the host leaves at its
 * default (30 s), so a longer invocation would be cut off. SHUTDOWN_SECONDS covers those 30 s.
 */
export const FUNCTION_TIMEOUT_SECONDS = Math.ceil(readHostConfig(PROJECT_ROOT, {}).functionTimeoutMs / 1000);
export const DRAIN_SLACK_SECONDS = 15;
export const SHUTDOWN_SECONDS = 45;
export const DRAIN_DEADLINE_SECONDS = FUNCTION_TIMEOUT_SECONDS + DRAIN_SLACK_SECONDS;
export const WORKER_GRACE_SECONDS = DRAIN_DEADLINE_SECONDS + SHUTDOWN_SECONDS;

/**
 * The preStop drain, run with the image's Node (`node -e DRAIN_SCRIPT <port> <key file> <deadline s>`).
 * Mirrors the real admin API in Azure/azure-functions-host
 * src/WebJobs.Script.WebHost/Controllers/HostController.cs (commit 89dc438d):
 * `POST /admin/host/drain` answers 202 and starts the drain; `GET /admin/host/drain/status`
 * answers {"state": "Disabled" | "InProgress" | "Completed", ...} (Models/DrainModeStatus.cs,
 * Models/DrainModeState.cs). Both need the admin level: the master key in x-functions-key.
 * It exits 0 once the state is Completed and 1 on an error or at the deadline (Kubernetes then
 * records a FailedPreStopHook event and sends SIGTERM anyway).
 */
export const DRAIN_SCRIPT = [
  'const [port, keyFile, seconds] = process.argv.slice(1);',
  'const url = `http://127.0.0.1:${port}/admin/host/drain`;',
  "const headers = { 'x-functions-key': require('node:fs').readFileSync(keyFile, 'utf8').trim() };",
  'const deadline = Date.now() + Number(seconds) * 1000;',
  '(async () => {',
  "  const started = await fetch(url, { method: 'POST', headers });",
  '  if (started.status !== 202) throw new Error(`POST ${url} answered ${started.status}`);',
  '  for (;;) {',
  '    const status = await fetch(`${url}/status`, { headers })',
  '      .then(async (r) => (r.ok ? r.json() : { state: `HTTP ${r.status}` }))',
  '      .catch((err) => ({ state: String(err) }));',
  "    if (status.state === 'Completed') return console.log('drain completed');",
  '    if (Date.now() > deadline) throw new Error(`drain still ${status.state} after ${seconds} s`);',
  '    await new Promise((resolve) => setTimeout(resolve, 1000));',
  '  }',
  '})().catch((err) => {',
  '  console.error(`drain failed: ${err.message}`);',
  '  process.exit(1);',
  '});',
].join('\n');

export type RoleKind = 'api' | 'worker' | 'metrics';

export interface Role {
  readonly kind: RoleKind;
  readonly name: string;
  readonly functions: readonly string[];
  readonly capability?: Capability;
}

/** Splits the registered functions into roles; throws on a function no role runs. */
export function rolesOf(functions: readonly RegisteredFunction[]): Role[] {
  const names = resourceNames('');
  const pick = (test: (f: RegisteredFunction) => boolean) =>
    functions
      .filter(test)
      .map((f) => f.name)
      .sort();
  const roles: Role[] = [
    { kind: 'api', name: 'api', functions: pick((f) => f.trigger.type === 'httpTrigger') },
    ...CAPABILITIES.map((capability) => ({
      kind: 'worker' as const,
      name: `worker-${capability.name}`,
      capability,
      functions: pick(
        (f) =>
          f.trigger.type === 'queueTrigger' &&
          [names.queueOf(capability.name), names.poisonQueueOf(capability.name)].includes(f.trigger.queueName ?? ''),
      ),
    })),
    {
      kind: 'metrics',
      name: 'metrics',
      functions: pick(
        (f) =>
          f.trigger.type === 'timerTrigger' ||
          [names.callbacksQueue, `${names.callbacksQueue}-poison`].includes(f.trigger.queueName ?? ''),
      ),
    },
  ];
  const placed = new Set(roles.flatMap((r) => r.functions));
  const homeless = functions.filter((f) => !placed.has(f.name));
  if (homeless.length)
    throw new Error(
      `no Kubernetes role runs ${homeless.map((f) => `${f.name} (${f.trigger.type}${f.trigger.queueName ? ` on ${f.trigger.queueName}` : ''})`).join(', ')}: extend rolesOf in scripts/k8s.ts`,
    );
  for (const role of roles)
    if (!role.functions.length) throw new Error(`Kubernetes role ${role.name} would run no function`);
  return roles;
}

// Typed with the Kubernetes and KEDA models, so a misspelt field fails to compile.
type K8sObject = IDeployment | IService | IServiceAccount | IRole | IRoleBinding | IScaledObject;

const labelsOf = (role: string) => ({ 'app.kubernetes.io/name': APP, 'app.kubernetes.io/component': role });
const selectorOf = (role: string) => ({ matchLabels: labelsOf(role) });

/** Resources per role: workers get the most CPU (sharp uses every core it is given). */
const RESOURCES: Record<RoleKind, { cpu: string; memory: string; cpuLimit: number; memoryLimit: string }> = {
  api: { cpu: '250m', memory: '384Mi', cpuLimit: 1, memoryLimit: '1Gi' },
  worker: { cpu: '1', memory: '768Mi', cpuLimit: 2, memoryLimit: '2Gi' },
  metrics: { cpu: '100m', memory: '256Mi', cpuLimit: 1, memoryLimit: '512Mi' },
};

function container(role: Role): IContainer {
  const { kind } = role;
  const r = RESOURCES[kind];
  const env: IEnvVar[] = [
    // One allow-list entry per function: the Functions host runs only these in this Deployment.
    ...role.functions.map((fn, i) => ({ name: `AzureFunctionsJobHost__functions__${i}`, value: fn })),
    { name: 'AzureWebJobsStorage', valueFrom: { secretKeyRef: { name: STORAGE_SECRET, key: 'AzureWebJobsStorage' } } },
    // libvips threads per image = the CPUs this container may use, not the node's core count.
    { name: 'SHARP_CONCURRENCY', value: String(r.cpuLimit) },
  ];
  if (kind === 'api') {
    env.push(
      { name: 'AzureWebJobsSecretStorageType', value: 'kubernetes' },
      { name: 'AzureWebJobsKubernetesSecretName', value: `secrets/${KEYS_SECRET}` },
    );
  } else if (kind === 'worker') {
    // Read-only keys from the mounted Secret (see KEYS_DIR): the master key the drain hook uses.
    env.push({ name: 'AzureWebJobsSecretStorageType', value: 'kubernetes' });
  }
  // The host answers /admin/host/ping as soon as it listens; / only once the functions are loaded.
  const ready = kind === 'api' ? '/api/health' : '/';
  return {
    name: 'functions',
    image: IMAGE,
    ports: [{ name: 'http', containerPort: HTTP_PORT }],
    envFrom: [{ configMapRef: { name: CONFIG_MAP } }],
    env,
    resources: {
      requests: { cpu: r.cpu, memory: r.memory },
      limits: { cpu: String(r.cpuLimit), memory: r.memoryLimit },
    },
    startupProbe: { httpGet: { path: '/admin/host/ping', port: 'http' }, periodSeconds: 2, failureThreshold: 60 },
    readinessProbe: {
      httpGet: { path: ready, port: 'http' },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
    livenessProbe: {
      httpGet: { path: '/admin/host/ping', port: 'http' },
      periodSeconds: 20,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
    securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
    ...(kind === 'worker' && {
      volumeMounts: [{ name: 'function-keys', mountPath: KEYS_DIR, readOnly: true }],
      lifecycle: {
        preStop: {
          exec: {
            command: ['node', '-e', DRAIN_SCRIPT, String(HTTP_PORT), MASTER_KEY_FILE, String(DRAIN_DEADLINE_SECONDS)],
          },
        },
      },
    }),
  };
}

function deployment(role: Role, spec: Partial<IDeploymentSpec>, pod: Partial<IPodSpec> = {}): IDeployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${APP}-${role.name}`, labels: labelsOf(role.name) },
    spec: {
      ...spec,
      selector: selectorOf(role.name),
      template: {
        metadata: { labels: labelsOf(role.name) },
        spec: { ...pod, containers: [container(role)] },
      },
    },
  };
}

function apiObjects(role: Role): K8sObject[] {
  const account = `${APP}-api`;
  return [
    deployment(role, { replicas: 2 }, { serviceAccountName: account, terminationGracePeriodSeconds: 30 }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${APP}-api`, labels: labelsOf(role.name) },
      spec: { selector: labelsOf(role.name), ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    },
    // The host keeps the function keys (authLevel "function") in a Secret it creates and reads.
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, labels: labelsOf(role.name) } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: `${APP}-function-keys`, labels: labelsOf(role.name) },
      rules: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${APP}-function-keys`, labels: labelsOf(role.name) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${APP}-function-keys` },
      subjects: [{ kind: 'ServiceAccount', name: account }],
    },
  ];
}

function workerObjects(role: Role & { capability: Capability }): K8sObject[] {
  const { scaling } = role.capability;
  const names = resourceNames('');
  const queueTrigger = (queueName: string, queueLength: number, activationQueueLength: number) => ({
    type: 'azure-queue',
    name: queueName,
    metadata: {
      queueName,
      queueLength: String(queueLength),
      activationQueueLength: String(activationQueueLength),
      connectionFromEnv: 'AzureWebJobsStorage',
    },
  });
  return [
    // No `replicas`: KEDA owns the count (a fixed value would fight the autoscaler on every apply).
    // The grace period covers the drain of the longest invocation and the host's shutdown (see
    // WORKER_GRACE_SECONDS). The keys Secret is created by the API host, not by these manifests:
    // `optional` lets a worker start before it exists (the kubelet fills the volume once it does).
    // Without the key the preStop fails at once and the host only drains for its shutdown timeout.
    deployment(
      role,
      {},
      {
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: WORKER_GRACE_SECONDS,
        volumes: [{ name: 'function-keys', secret: { secretName: KEYS_SECRET, optional: true } }],
      },
    ),
    {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: `${APP}-${role.name}`, labels: labelsOf(role.name) },
      spec: {
        scaleTargetRef: { name: `${APP}-${role.name}` },
        pollingInterval: 5,
        cooldownPeriod: 60,
        minReplicaCount: scaling.minReplicas,
        maxReplicaCount: scaling.maxReplicas,
        advanced: {
          horizontalPodAutoscalerConfig: {
            behavior: {
              // Up at once: double, or add 4 pods, every 15 s, whichever is more.
              scaleUp: {
                stabilizationWindowSeconds: 0,
                selectPolicy: 'Max',
                policies: [
                  { type: 'Percent', value: 100, periodSeconds: 15 },
                  { type: 'Pods', value: 4, periodSeconds: 15 },
                ],
              },
              // Down only after a minute of lower demand, at most half the pods per 30 s.
              scaleDown: {
                stabilizationWindowSeconds: 60,
                selectPolicy: 'Max',
                policies: [{ type: 'Percent', value: 50, periodSeconds: 30 }],
              },
            },
          },
        },
        triggers: [
          queueTrigger(names.queueOf(role.capability.name), scaling.queueLength, scaling.activationQueueLength),
          // A message in the poison queue wakes one worker to record it as a dead letter.
          queueTrigger(names.poisonQueueOf(role.capability.name), 1, 0),
        ],
      },
    },
  ];
}

function metricsObjects(role: Role): K8sObject[] {
  // Exactly one replica and Recreate: two timer hosts would only wait on each other's singleton lock.
  return [
    deployment(
      role,
      { replicas: 1, strategy: { type: 'Recreate' } },
      { automountServiceAccountToken: false, terminationGracePeriodSeconds: 30 },
    ),
  ];
}

/**
 * The workload identity overlay's patches (infra/k8s/overlays/azure-workload-identity): every pod runs
 * under a ServiceAccount federated with a user-assigned managed identity (Microsoft Entra Workload ID:
 * the pod label `azure.workload.identity/use` makes the webhook project a token and set AZURE_CLIENT_ID,
 * AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, which ManagedIdentityCredential exchanges), storage is
 * reached by AzureWebJobsStorage__accountName + __credential=managedidentity + __clientId (from the
 * overlay's identity.env) instead of the connection string Secret, and each ScaledObject's azure-queue
 * triggers name the account and authenticate through a TriggerAuthentication with
 * `podIdentity: { provider: azure-workload }` (https://keda.sh/docs/scalers/azure-storage-queue/:
 * `accountName` instead of `connectionFromEnv`; the account name and client id are filled in by the
 * overlay's replacements).
 */
export const WORKLOAD_IDENTITY_PATCHES = path.join(
  PROJECT_ROOT,
  'infra/k8s/overlays/azure-workload-identity/patches.yaml',
);
export const STORAGE_IDENTITY_ACCOUNT = `${APP}-storage-identity`;
export const TRIGGER_AUTH = `${APP}-storage-identity`;
/** Replaced by the overlay (kustomize replacements from identity.env); never deployed as is. */
export const ACCOUNT_PLACEHOLDER = 'set-by-identity-env';

function identityPatches(role: Role): object[] {
  const deploymentPatch = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${APP}-${role.name}` },
    spec: {
      template: {
        metadata: { labels: { 'azure.workload.identity/use': 'true' } },
        spec: {
          // the API keeps its own account (it manages the keys Secret); it is annotated with the identity too
          ...(role.kind === 'api' ? {} : { serviceAccountName: STORAGE_IDENTITY_ACCOUNT }),
          containers: [{ name: 'functions', env: [{ name: 'AzureWebJobsStorage', $patch: 'delete' }] }],
        },
      },
    },
  };
  if (role.kind !== 'worker') return [deploymentPatch];
  const names = resourceNames('');
  const capability = role.capability!;
  const trigger = (queueName: string, queueLength: number, activationQueueLength: number) => ({
    type: 'azure-queue',
    name: queueName,
    metadata: {
      queueName,
      queueLength: String(queueLength),
      activationQueueLength: String(activationQueueLength),
      accountName: ACCOUNT_PLACEHOLDER,
    },
    authenticationRef: { name: TRIGGER_AUTH },
  });
  return [
    deploymentPatch,
    {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: `${APP}-${role.name}` },
      spec: {
        triggers: [
          trigger(
            names.queueOf(capability.name),
            capability.scaling.queueLength,
            capability.scaling.activationQueueLength,
          ),
          trigger(names.poisonQueueOf(capability.name), 1, 0),
        ],
      },
    },
  ];
}

export function renderIdentityPatches(functions: readonly RegisteredFunction[]): string {
  const header = [
    '# Generated by `npm run k8s` from the function registrations and the capability table: the workload',
    '# identity patches of every Deployment and ScaledObject in base/roles.yaml. Do not edit.',
  ].join('\n');
  const patches = rolesOf(functions).flatMap(identityPatches);
  return `${header}\n${patches.map((o) => stringify(o, { lineWidth: 0 })).join('---\n')}`;
}

export function renderRoles(functions: readonly RegisteredFunction[]): string {
  const objects = rolesOf(functions).flatMap((role) =>
    role.kind === 'worker'
      ? workerObjects(role as Role & { capability: Capability })
      : role.kind === 'api'
        ? apiObjects(role)
        : metricsObjects(role),
  );
  const header = [
    '# Generated by `npm run k8s` from the function registrations and the capability table',
    '# (shared/capabilities.ts). Do not edit: change the code and run it again.',
  ].join('\n');
  return `${header}\n${objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n')}`;
}

/** The registration table of the built function files (run `npm run build` first). */
export function registeredFunctions(root = PROJECT_ROOT): readonly RegisteredFunction[] {
  return loadFunctions(functionFiles(root));
}

if (require.main === module) {
  // The manifests describe the cluster, whose queues carry no test namespace.
  delete process.env.STORAGE_NAMESPACE;
  const functions = registeredFunctions();
  writeGenerated(ROLES_FILE, renderRoles(functions));
  writeGenerated(WORKLOAD_IDENTITY_PATCHES, renderIdentityPatches(functions));
}
