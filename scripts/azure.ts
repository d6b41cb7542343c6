/**
 * Generates the Azure Resource Manager template for a resource group (infra/azure/azuredeploy.json)
 * and an example parameters file from the code, as `npm run k8s` generates the Kubernetes manifests:
 * the capability table gives the queues (and their poison queues), the resource names come from
 * shared/storage/names.ts, the app settings from the SETTINGS table the app validates, and the
 * concurrency per instance from host.json.
 *
 * What it creates: a storage account reached only by Microsoft Entra ID (shared keys off), its
 * containers, queues, tables and lifecycle rules that expire results and uploads; Log Analytics +
 * Application Insights with identity-based ingestion; one user-assigned managed identity with data-plane roles on that
 * storage account and on that Application Insights component only; a Flex Consumption plan and
 * Function App (Node 22) whose host, deployment package and telemetry all use that identity.
 *
 * ARM JSON and not Bicep: no Bicep compiler can run here, and JSON can be validated in the tests
 * against Microsoft's published resource schemas (tests/infra/arm-schemas).
 *
 * `npm run azure` rewrites the files; a test fails when they differ from what this script renders.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CAPABILITIES, workerFunctionName, poisonFunctionName } from '../shared/capabilities';
import { ALLOCATOR_ENV, SETTINGS, STORAGE_CONNECTION } from '../shared/config';
import { resourceNames } from '../shared/storage/names';
import { readHostConfig } from './local-host/host-config';
import { PROJECT_ROOT, writeGenerated } from './paths';

export const AZURE_DIR = path.join(PROJECT_ROOT, 'infra/azure');
export const TEMPLATE_FILE = path.join(AZURE_DIR, 'azuredeploy.json');
export const PARAMETERS_FILE = path.join(AZURE_DIR, 'azuredeploy.parameters.example.json');

/** apiVersions, each one a file in Azure/azure-resource-manager-schemas (vendored in tests/infra/arm-schemas). */
export const API_VERSIONS = {
  'Microsoft.Storage': '2025-01-01',
  'Microsoft.OperationalInsights': '2023-09-01',
  'Microsoft.Insights/components': '2020-02-02',
  'Microsoft.ManagedIdentity': '2023-01-31',
  'Microsoft.Authorization': '2022-04-01',
  // The first Microsoft.Web schema with functionAppConfig is 2023-12-01; 2024-11-01 is the newest published.
  'Microsoft.Web': '2024-11-01',
} as const;

/**
 * Built-in role definitions (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles):
 * the same GUID in every tenant. Storage Blob Data Owner and not Contributor: Microsoft's guidance for an
 * identity-based AzureWebJobsStorage is Owner (the host keeps its locks and keys in blobs), and Flex
 * Consumption reads the app package from a container of the same account. Owner's actions include
 * Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action, so the result links (user
 * delegation SAS) need no Storage Blob Delegator on top.
 */
export const ROLES = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
} as const;

/** Flex Consumption's bounds for maximumInstanceCount (app-wide; there is no per-function maximum). */
export const FLEX_MAX_INSTANCES = { min: 40, max: 1000 } as const;
/**
 * Flex Consumption's instance sizes but 512 MB: MAX_INPUT_PIXELS (100 MP by default) lets one image take about
 * 1 GB in sharp, which a 512 MB instance cannot hold; the Kubernetes workers get 2 GiB too.
 */
export const INSTANCE_MEMORY_MB = [2048, 4096] as const;
export const DEPLOYMENT_CONTAINER = 'app-package';

/**
 * The metrics timer on a pay-per-use plan. Flex Consumption bills on-demand instances by memory × execution
 * time (each execution rounded up to a minimum) plus a charge per execution; an idle instance is scaled in.
 * A timer every 10 s (the app's default, made for a cluster where the metrics pod runs anyway) runs 8,640
 * times a day and never lets the instance that runs it scale in. Every 5 minutes is 288 runs a day (30×
 * fewer), and the app can scale to zero between snapshots; the dashboard's charts get a point per 5 minutes
 * and the scaling advice lags by up to that much (Flex scales on the queues itself, not on this advice).
 */
export const FLEX_METRICS_SCHEDULE = '0 */5 * * * *';

/** Concurrency of one instance on one queue function: host.json queues.batchSize + newBatchThreshold. */
export function queueConcurrency(root = PROJECT_ROOT): { batchSize: number; newBatchThreshold: number } {
  const { batchSize, newBatchThreshold } = readHostConfig(root, {}).queues;
  return { batchSize, newBatchThreshold };
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
interface Parameter {
  type: 'string' | 'int';
  defaultValue: Json;
  allowedValues?: Json[];
  minValue?: number;
  maxValue?: number;
  minLength?: number;
  maxLength?: number;
  metadata: { description: string };
}
export interface ArmResource {
  type: string;
  apiVersion: string;
  name: string;
  [key: string]: Json;
}
export interface ArmTemplate {
  $schema: string;
  contentVersion: string;
  metadata: { [key: string]: Json };
  parameters: Record<string, Parameter>;
  variables: Record<string, Json>;
  resources: ArmResource[];
  outputs: Record<string, { type: string; value: Json }>;
}

const param = (name: string) => `parameters('${name}')`;
const variable = (name: string) => `variables('${name}')`;
const expr = (body: string) => `[${body}]`;
const quote = (text: string) => `'${text.replace(/'/g, "''")}'`;
const resourceId = (type: string, ...names: string[]) => `resourceId(${[quote(type), ...names].join(', ')})`;

const STORAGE = 'Microsoft.Storage/storageAccounts';
const storageName = variable('storageName');
const storageId = resourceId(STORAGE, storageName);
const IDENTITY = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const identityId = resourceId(IDENTITY, variable('identityName'));
const identityClientId = `reference(${identityId}, '${API_VERSIONS['Microsoft.ManagedIdentity']}').clientId`;
const COMPONENT = 'Microsoft.Insights/components';
const componentId = resourceId(COMPONENT, variable('appInsightsName'));
const WORKSPACE = 'Microsoft.OperationalInsights/workspaces';
const PLAN = 'Microsoft.Web/serverfarms';
const SITE = 'Microsoft.Web/sites';
const ROLE_ASSIGNMENT = 'Microsoft.Authorization/roleAssignments';

const PARAMETERS: Record<string, Parameter> = {
  location: {
    type: 'string',
    defaultValue: '[resourceGroup().location]',
    metadata: { description: 'Region of every resource (one that offers Flex Consumption); the group’s by default.' },
  },
  baseName: {
    type: 'string',
    defaultValue: 'imgpipe',
    minLength: 3,
    maxLength: 11,
    metadata: {
      description:
        'Lower-case letters and digits that start every resource name; a hash of the resource group makes them unique.',
    },
  },
  instanceMemoryMB: {
    type: 'int',
    defaultValue: 2048,
    allowedValues: [...INSTANCE_MEMORY_MB],
    metadata: {
      description:
        'Memory of each Function App instance (CPU follows it: 2048 MB is one vCPU, 4096 two). Not 512: sharp needs about 1 GB for a 100 MP image.',
    },
  },
  maximumInstanceCount: {
    type: 'int',
    defaultValue: FLEX_MAX_INSTANCES.min,
    minValue: FLEX_MAX_INSTANCES.min,
    maxValue: FLEX_MAX_INSTANCES.max,
    metadata: {
      description:
        'Most instances the whole app may run (Flex Consumption has no per-function maximum; 40 is its lowest).',
    },
  },
  httpAlwaysReady: {
    type: 'int',
    defaultValue: 0,
    minValue: 0,
    maxValue: 10,
    metadata: {
      description:
        'Always-ready instances of the HTTP group: 0 scales to zero (a cold start on the first request), 1 or more removes cold starts and is billed all day.',
    },
  },
  retentionResultsDays: {
    type: 'int',
    defaultValue: SETTINGS.retentionResultsDays.fallback,
    minValue: 1,
    maxValue: SETTINGS.retentionResultsDays.max,
    metadata: {
      description: `${SETTINGS.retentionResultsDays.env}: days after which a result (processed/) is deleted by the storage account's lifecycle rule; the API answers 410 for it from then on.`,
    },
  },
  retentionUploadsDays: {
    type: 'int',
    defaultValue: SETTINGS.retentionUploadsDays.fallback,
    minValue: 1,
    maxValue: SETTINGS.retentionUploadsDays.max,
    metadata: {
      description: `${SETTINGS.retentionUploadsDays.env}: days after which an uploaded image (images/) is deleted by the storage account's lifecycle rule.`,
    },
  },
  metricsSchedule: {
    type: 'string',
    defaultValue: FLEX_METRICS_SCHEDULE,
    metadata: {
      description: `${SETTINGS.metricsSchedule.env}: the metrics timer. Every 5 minutes (288 runs a day) lets the app scale to zero between snapshots; every 10 s (8,640 runs a day) keeps an instance from ever scaling in.`,
    },
  },
};

const VARIABLES: Record<string, Json> = {
  suffix: expr(`uniqueString(resourceGroup().id, ${param('baseName')})`),
  storageName: expr(`take(toLower(concat(${param('baseName')}, variables('suffix'))), 24)`),
  functionAppName: expr(`concat(${param('baseName')}, '-', variables('suffix'))`),
  planName: expr(`concat(${param('baseName')}, '-plan-', variables('suffix'))`),
  identityName: expr(`concat(${param('baseName')}, '-id-', variables('suffix'))`),
  workspaceName: expr(`concat(${param('baseName')}, '-logs-', variables('suffix'))`),
  appInsightsName: expr(`concat(${param('baseName')}, '-ai-', variables('suffix'))`),
};

/**
 * The app's queues: each capability's queue and its poison queue, and the completion callbacks' queue and its
 * poison queue, with no namespace (one app per account).
 */
export function templateQueues(): string[] {
  const names = resourceNames('');
  return [
    ...CAPABILITIES.flatMap((c) => [names.queueOf(c.name), names.poisonQueueOf(c.name)]),
    names.callbacksQueue,
    `${names.callbacksQueue}-poison`,
  ];
}

export function templateContainers(): string[] {
  const names = resourceNames('');
  return [names.images, names.processed, DEPLOYMENT_CONTAINER];
}

export function templateTables(): string[] {
  const names = resourceNames('');
  return [
    names.tasksTable,
    names.deadLettersTable,
    names.workersTable,
    names.metricsTable,
    names.callbacksTable,
    names.jobsTable,
  ];
}

/**
 * A lifecycle management rule: block blobs of one container are deleted once not modified for the parameter's
 * days. Azure applies rules about once a day at no charge for the deletes (the app sets RETENTION_BLOBS=lifecycle,
 * so its retention timer does not list these containers).
 */
function expiryRule(name: string, container: string, days: string): Json {
  return {
    name,
    enabled: true,
    type: 'Lifecycle',
    definition: {
      filters: { blobTypes: ['blockBlob'], prefixMatch: [`${container}/`] },
      actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: expr(param(days)) } } },
    },
  };
}

function storageResources(): ArmResource[] {
  const apiVersion = API_VERSIONS['Microsoft.Storage'];
  const child = (type: string, name: string, parents: string[]): ArmResource => ({
    type: `${STORAGE}/${type}`,
    apiVersion,
    name: expr(`concat(${storageName}, '/${name}')`),
    dependsOn: parents.map(expr),
    properties: {},
  });
  const images = resourceNames('').images;
  const processed = resourceNames('').processed;
  return [
    {
      type: STORAGE,
      apiVersion,
      name: expr(storageName),
      location: expr(param('location')),
      kind: 'StorageV2',
      sku: { name: 'Standard_LRS' },
      properties: {
        // Entra ID only: no account key can be used, so none can leak.
        allowSharedKeyAccess: false,
        defaultToOAuthAuthentication: true,
        allowBlobPublicAccess: false,
        minimumTlsVersion: 'TLS1_2',
        supportsHttpsTrafficOnly: true,
        accessTier: 'Hot',
      },
    },
    child('blobServices', 'default', [storageId]),
    ...templateContainers().map((c) => ({
      ...child('blobServices/containers', `default/${c}`, [
        resourceId(`${STORAGE}/blobServices`, storageName, "'default'"),
      ]),
      properties: { publicAccess: 'None' },
    })),
    child('queueServices', 'default', [storageId]),
    ...templateQueues().map((q) =>
      child('queueServices/queues', `default/${q}`, [resourceId(`${STORAGE}/queueServices`, storageName, "'default'")]),
    ),
    child('tableServices', 'default', [storageId]),
    ...templateTables().map((t) =>
      child('tableServices/tables', `default/${t}`, [resourceId(`${STORAGE}/tableServices`, storageName, "'default'")]),
    ),
    {
      type: `${STORAGE}/managementPolicies`,
      apiVersion,
      name: expr(`concat(${storageName}, '/default')`),
      dependsOn: [expr(storageId)],
      properties: {
        policy: {
          rules: [
            expiryRule('expire-results', processed, 'retentionResultsDays'),
            expiryRule('expire-uploads', images, 'retentionUploadsDays'),
          ],
        },
      },
    },
  ];
}

function monitoringResources(): ArmResource[] {
  return [
    {
      type: WORKSPACE,
      apiVersion: API_VERSIONS['Microsoft.OperationalInsights'],
      name: expr(variable('workspaceName')),
      location: expr(param('location')),
      properties: { sku: { name: 'PerGB2018' }, retentionInDays: 30 },
    },
    {
      type: COMPONENT,
      apiVersion: API_VERSIONS['Microsoft.Insights/components'],
      name: expr(variable('appInsightsName')),
      location: expr(param('location')),
      kind: 'web',
      dependsOn: [expr(resourceId(WORKSPACE, variable('workspaceName')))],
      properties: {
        Application_Type: 'web',
        WorkspaceResourceId: expr(resourceId(WORKSPACE, variable('workspaceName'))),
        // Telemetry only with a Microsoft Entra token (Monitoring Metrics Publisher): the instrumentation key
        // in the connection string alone no longer lets anyone write to this component.
        DisableLocalAuth: true,
      },
    },
  ];
}

/** The identity's roles: each on one resource of this template, never on the group or the subscription. */
export const GRANTS = [
  { role: 'storageBlobDataOwner', scopeType: STORAGE, scopeName: storageName },
  { role: 'storageQueueDataContributor', scopeType: STORAGE, scopeName: storageName },
  { role: 'storageTableDataContributor', scopeType: STORAGE, scopeName: storageName },
  { role: 'monitoringMetricsPublisher', scopeType: COMPONENT, scopeName: variable('appInsightsName') },
] as const satisfies readonly { role: keyof typeof ROLES; scopeType: string; scopeName: string }[];
type Grant = (typeof GRANTS)[number];

const grantName = (g: Grant) => `guid(${resourceId(g.scopeType, g.scopeName)}, ${identityId}, '${ROLES[g.role]}')`;
const grantId = (g: Grant) =>
  `extensionResourceId(${resourceId(g.scopeType, g.scopeName)}, '${ROLE_ASSIGNMENT}', ${grantName(g)})`;

function roleAssignment(g: Grant): ArmResource {
  return {
    type: ROLE_ASSIGNMENT,
    apiVersion: API_VERSIONS['Microsoft.Authorization'],
    name: expr(grantName(g)),
    scope: expr(`concat('${g.scopeType}/', ${g.scopeName})`),
    dependsOn: [expr(resourceId(g.scopeType, g.scopeName)), expr(identityId)],
    properties: {
      roleDefinitionId: expr(`subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '${ROLES[g.role]}')`),
      principalId: expr(`reference(${identityId}, '${API_VERSIONS['Microsoft.ManagedIdentity']}').principalId`),
      // Lets ARM assign a just-created identity before its principal has replicated everywhere.
      principalType: 'ServicePrincipal',
    },
  };
}

function identityResources(): ArmResource[] {
  return [
    {
      type: IDENTITY,
      apiVersion: API_VERSIONS['Microsoft.ManagedIdentity'],
      name: expr(variable('identityName')),
      location: expr(param('location')),
    },
    ...GRANTS.map(roleAssignment),
  ];
}

/**
 * Our settings a deployment sets, by SETTINGS key; every other setting keeps its default. The values are
 * literals or parameters: the tests run the app's own readSettings over them.
 * - SHARP_CONCURRENCY is left to its default (the CPUs the instance reports): Flex sizes CPU by memory.
 * - STORAGE_NAMESPACE stays empty: the storage account belongs to this app alone.
 */
export function deployedSettings(): Partial<Record<keyof typeof SETTINGS, string>> {
  const { batchSize, newBatchThreshold } = queueConcurrency();
  return {
    metricsSchedule: expr(param('metricsSchedule')),
    workerSlots: String(batchSize + newBatchThreshold),
    appInsightsConnectionString: expr(
      `reference(${componentId}, '${API_VERSIONS['Microsoft.Insights/components']}').ConnectionString`,
    ),
    // The host's telemetry and ours (shared/telemetry.ts) both sign in as the identity: the component refuses keys.
    appInsightsAuthentication: expr(`concat('Authorization=AAD;ClientId=', ${identityClientId})`),
    serviceName: 'image-pipeline',
    // the lifecycle rules delete results and uploads; the app's 410 for an expired result counts the same days
    retentionResultsDays: expr(`string(${param('retentionResultsDays')})`),
    retentionUploadsDays: expr(`string(${param('retentionUploadsDays')})`),
    retentionBlobs: 'lifecycle',
  };
}

/** The Function App's app settings: the host's identity-based storage, then ours. */
export function appSettings(): { name: string; value: string }[] {
  const ours = Object.entries(deployedSettings()).map(([key, value]) => ({
    name: SETTINGS[key as keyof typeof SETTINGS].env,
    value,
  }));
  return [
    { name: `${STORAGE_CONNECTION}__accountName`, value: expr(storageName) },
    { name: `${STORAGE_CONNECTION}__credential`, value: 'managedidentity' },
    { name: `${STORAGE_CONNECTION}__clientId`, value: expr(identityClientId) },
    // the host's environment, which its Node worker process inherits: the allocator sharp needs (ALLOCATOR_ENV)
    ...Object.entries(ALLOCATOR_ENV).map(([name, value]) => ({ name, value })),
    ...ours,
  ];
}

/**
 * Always-ready instances: the HTTP group from a parameter, and each capability's worker function from its
 * KEDA minReplicas (only when above zero: zero is Flex's default and means scale to zero, as KEDA does).
 */
function alwaysReady(): Json[] {
  return [
    { name: 'http', instanceCount: expr(param('httpAlwaysReady')) },
    ...CAPABILITIES.filter((c) => (c.scaling.minReplicas as number) > 0).map((c) => ({
      name: `function:${workerFunctionName(c.name)}`,
      instanceCount: c.scaling.minReplicas,
    })),
  ];
}

function appResources(): ArmResource[] {
  const planId = resourceId(PLAN, variable('planName'));
  const web = API_VERSIONS['Microsoft.Web'];
  return [
    {
      type: PLAN,
      apiVersion: web,
      name: expr(variable('planName')),
      location: expr(param('location')),
      kind: 'functionapp',
      sku: { name: 'FC1', tier: 'FlexConsumption' },
      properties: { reserved: true },
    },
    {
      type: SITE,
      apiVersion: web,
      name: expr(variable('functionAppName')),
      location: expr(param('location')),
      kind: 'functionapp,linux',
      identity: { type: 'UserAssigned', userAssignedIdentities: { [expr(identityId)]: {} } },
      // The host starts with the identity's roles already granted (role propagation itself can still lag).
      dependsOn: [
        expr(planId),
        expr(componentId),
        ...templateContainers().map((c) =>
          expr(resourceId(`${STORAGE}/blobServices/containers`, storageName, "'default'", quote(c))),
        ),
        ...templateQueues().map((q) =>
          expr(resourceId(`${STORAGE}/queueServices/queues`, storageName, "'default'", quote(q))),
        ),
        ...templateTables().map((t) =>
          expr(resourceId(`${STORAGE}/tableServices/tables`, storageName, "'default'", quote(t))),
        ),
        ...GRANTS.map((g) => expr(grantId(g))),
      ],
      properties: {
        serverFarmId: expr(planId),
        httpsOnly: true,
        siteConfig: { minTlsVersion: '1.2', ftpsState: 'Disabled', appSettings: appSettings() },
        functionAppConfig: {
          deployment: {
            storage: {
              type: 'blobContainer',
              value: expr(
                `concat(reference(${storageId}, '${API_VERSIONS['Microsoft.Storage']}').primaryEndpoints.blob, '${DEPLOYMENT_CONTAINER}')`,
              ),
              authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: expr(identityId) },
            },
          },
          scaleAndConcurrency: {
            instanceMemoryMB: expr(param('instanceMemoryMB')),
            maximumInstanceCount: expr(param('maximumInstanceCount')),
            alwaysReady: alwaysReady(),
          },
          runtime: { name: 'node', version: '22' },
        },
      },
    },
  ];
}

export function renderTemplate(): ArmTemplate {
  const { batchSize, newBatchThreshold } = queueConcurrency();
  return {
    $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
    contentVersion: '1.0.0.0',
    metadata: {
      generator: 'npm run azure (scripts/azure.ts): do not edit, change the code and run it again',
      scaling: [
        'Flex Consumption scales each queue-triggered function on its own queue (per-function scaling), as KEDA',
        `scales each capability's Deployment. One instance runs ${batchSize + newBatchThreshold} messages of a queue at`,
        `once (host.json batchSize ${batchSize} + newBatchThreshold ${newBatchThreshold}); Flex's target-based scaler`,
        `aims at batchSize (${batchSize}) messages per instance, where KEDA aims at the capability's queueLength`,
        `(${CAPABILITIES.map((c) => `${c.name} ${c.scaling.queueLength}`).join(', ')}). KEDA's maxReplicaCount`,
        `(${CAPABILITIES.map((c) => `${c.name} ${c.scaling.maxReplicas}`).join(', ')}) has no Flex equivalent: only the`,
        'app-wide maximumInstanceCount. minReplicaCount maps to always-ready instances of process<Capability>.',
      ].join(' '),
      workerFunctions: CAPABILITIES.map((c) => `${workerFunctionName(c.name)}, ${poisonFunctionName(c.name)}`).join(
        '; ',
      ),
    },
    parameters: PARAMETERS,
    variables: VARIABLES,
    resources: [...storageResources(), ...monitoringResources(), ...identityResources(), ...appResources()],
    outputs: {
      functionAppName: { type: 'string', value: expr(variable('functionAppName')) },
      storageName: { type: 'string', value: expr(storageName) },
      identityClientId: {
        type: 'string',
        value: expr(identityClientId),
      },
      defaultHostName: {
        type: 'string',
        value: expr(
          `reference(${resourceId(SITE, variable('functionAppName'))}, '${API_VERSIONS['Microsoft.Web']}').defaultHostName`,
        ),
      },
    },
  };
}

/** The example parameters file: every parameter at its default, so a copy is a starting point. */
export function renderParameters(): object {
  return {
    $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#',
    contentVersion: '1.0.0.0',
    parameters: Object.fromEntries(
      Object.entries(PARAMETERS)
        .filter(([name]) => name !== 'location')
        .map(([name, p]) => [name, { value: p.defaultValue }]),
    ),
  };
}

export const renderJson = (value: object): string => `${JSON.stringify(value, null, 2)}\n`;

if (require.main === module) {
  // The template describes the deployed app, whose queues carry no test namespace.
  delete process.env.STORAGE_NAMESPACE;
  mkdirSync(AZURE_DIR, { recursive: true });
  writeGenerated(TEMPLATE_FILE, renderJson(renderTemplate()));
  writeGenerated(PARAMETERS_FILE, renderJson(renderParameters()));
}
