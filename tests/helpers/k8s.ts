/** Renders infra/k8s with `kubectl kustomize` and validates each object against the Kubernetes and KEDA schemas. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const K8S_DIR = path.resolve(__dirname, '../../infra/k8s');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: any;
}

export function kustomize(dir: string): { text: string; objects: K8sObject[] } {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const objects = parseAllDocuments(text).map((doc) => {
    if (doc.errors.length) throw new Error(`kustomize output of ${dir} is not YAML: ${doc.errors[0].message}`);
    return doc.toJS() as K8sObject;
  });
  return { text, objects: objects.filter(Boolean) };
}

/** The model class for apiVersion + kind; the list is the kinds the manifests may use. */
const MODELS: Record<string, string> = {
  'v1/Namespace': 'kubernetes-models/v1/Namespace',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'v1/PersistentVolumeClaim': 'kubernetes-models/v1/PersistentVolumeClaim',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'rbac.authorization.k8s.io/v1/Role': 'kubernetes-models/rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding',
  'keda.sh/v1alpha1/ScaledObject': '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject',
  'keda.sh/v1alpha1/TriggerAuthentication': '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication',
};

/** Throws with the object's kind/name and the schema's complaint when it is not valid. */
export function validateObject(object: K8sObject): void {
  const key = `${object.apiVersion}/${object.kind}`;
  const module = MODELS[key];
  if (!module)
    throw new Error(`${key} ${object.metadata?.name}: no schema known for this kind (add it to tests/helpers/k8s.ts)`);
  // kustomize folds long Secret values over lines; the API server's base64 decoder skips newlines.
  if (object.kind === 'Secret' && object.data)
    object = {
      ...object,
      data: Object.fromEntries(
        Object.entries(object.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')]),
      ),
    };
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the model module depends on the kind
  const Model = (require(module) as Record<string, new (data: unknown) => { validate(): void }>)[object.kind];
  try {
    new Model(object).validate();
  } catch (err) {
    throw new Error(`${key} ${object.metadata?.name} is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export const envOf = (deployment: K8sObject): { name: string; value?: string; valueFrom?: any }[] =>
  deployment.spec.template.spec.containers[0].env ?? [];

/** The functions a Deployment's host runs: its AzureFunctionsJobHost__functions__N settings, in order. */
export function selectedFunctionsOf(deployment: K8sObject): string[] {
  return envOf(deployment)
    .filter((e) => /^AzureFunctionsJobHost__functions__\d+$/.test(e.name))
    .sort((a, b) => Number(a.name.split('__').pop()) - Number(b.name.split('__').pop()))
    .map((e) => e.value!);
}
