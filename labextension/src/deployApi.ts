/**
 * Typed calls of the model deployment REST API (`{baseUrl}odh/api/deployments...`) and the
 * client-side rules for deployment names.
 */
import { requestAPI, seg } from './handler';

export type DeploymentState = 'Creating' | 'Available' | 'Failed' | 'Deleting';
export type DeploymentStage = 'uploading' | 'creating' | 'starting' | 'ready' | 'failed';
export type Framework = 'sklearn' | 'mlflow';

export interface IDeploymentVersion {
  version: number;
  model_uri: string;
  framework: string;
  created: string;
  state: 'Available' | 'Failed' | 'Retired' | 'Creating';
}

export interface IPrediction {
  inputs: unknown;
  outputs: unknown;
  elapsed_ms: number;
}

export interface IExampleRequest {
  url: string;
  /** Content-Type and, unless the deployment is public, its API key as a Bearer Authorization header. */
  headers?: Record<string, string>;
  body: unknown;
  curl: string;
}

export interface IDeployment {
  name: string;
  owner: string;
  state: DeploymentState;
  stage: DeploymentStage;
  url: string | null;
  infer_url: string | null;
  model_uri: string;
  framework: string;
  /** The serving version. */
  version: number;
  versions: IDeploymentVersion[];
  created: string;
  updated: string;
  last_error: string | null;
  log_tail: string[];
  restarts: number;
  example_request: IExampleRequest | null;
  test_prediction: IPrediction | null;
  /** Whether anyone may call the endpoint without a credential (the owner's choice; off by default). */
  public?: boolean;
  /** The endpoint's API key: only in the answer about one deployment (never in listings). */
  api_key?: string;
}

/** The stages of a deployment in the order they happen (`failed` is not one of them). */
export const STAGES: DeploymentStage[] = ['uploading', 'creating', 'starting', 'ready'];

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function post<T>(endPoint: string, body?: unknown): Promise<T> {
  return requestAPI<T>(endPoint, {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(body ?? {})
  });
}

function deploymentPath(name: string, rest = ''): string {
  return `deployments/${seg(name)}${rest}`;
}

export async function listDeployments(): Promise<IDeployment[]> {
  const reply = await requestAPI<{ deployments: IDeployment[] }>('deployments');
  return reply?.deployments ?? [];
}

export function getDeployment(name: string): Promise<IDeployment> {
  return requestAPI<IDeployment>(deploymentPath(name));
}

/** Deploy the model at `path` (relative to the server root) as a new deployment `name`. */
export function createDeployment(name: string, path: string, framework?: Framework): Promise<IDeployment> {
  return post<IDeployment>('deployments', framework ? { name, path, framework } : { name, path });
}

/** Deploy the model at `path` as the next version of the existing deployment `name`. */
export function deployNewVersion(name: string, path: string, framework?: Framework): Promise<IDeployment> {
  return post<IDeployment>(deploymentPath(name, '/versions'), framework ? { path, framework } : { path });
}

export function rollbackDeployment(name: string): Promise<IDeployment> {
  return post<IDeployment>(deploymentPath(name, '/rollback'));
}

export function deleteDeployment(name: string): Promise<{ deleted: string }> {
  return requestAPI<{ deleted: string }>(deploymentPath(name), { method: 'DELETE' });
}

/** A new API key for the endpoint (in the answer); the old one stops working at once. */
export function rotateKey(name: string): Promise<IDeployment> {
  return post<IDeployment>(deploymentPath(name, '/key'));
}

/** Let anyone call the endpoint (`true`), or only with its key or the owner's token (`false`). */
export function setPublic(name: string, isPublic: boolean): Promise<IDeployment> {
  return requestAPI<IDeployment>(deploymentPath(name), {
    method: 'PATCH',
    headers: JSON_HEADERS,
    body: JSON.stringify({ public: isPublic })
  });
}

/** Run a prediction; without `inputs` the server uses the deployment's stored example. */
export function predict(name: string, inputs?: number[][]): Promise<IPrediction> {
  return post<IPrediction>(deploymentPath(name, '/predict'), inputs ? { inputs } : {});
}

/** Deployment names: DNS-label-like, at most this long. */
export const NAME_MAX_LENGTH = 40;
export const NAME_PATTERN = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/**
 * The same rule as an HTML `pattern` attribute (anchored by the browser; valid in the `v`
 * mode browsers use for it), so a dialog input is `:invalid` exactly when the name is.
 */
export const NAME_HTML_PATTERN = `[a-z]([a-z0-9\\-]{0,${NAME_MAX_LENGTH - 2}}[a-z0-9])?`;

/** Why `name` is not a valid deployment name, or null when it is. */
export function nameProblem(name: string): string | null {
  if (!name) {
    return 'Enter a name.';
  }
  if (name.length > NAME_MAX_LENGTH) {
    return `At most ${NAME_MAX_LENGTH} characters (this one has ${name.length}).`;
  }
  if (!/^[a-z]/.test(name)) {
    return 'Start with a lowercase letter (a–z).';
  }
  if (/[^-a-z0-9]/.test(name)) {
    return 'Use only lowercase letters, digits and "-".';
  }
  if (name.endsWith('-')) {
    return 'End with a letter or a digit, not "-".';
  }
  return NAME_PATTERN.test(name) ? null : 'Not a valid name.';
}

/** The last segment of a path, without a trailing slash. */
export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** A valid deployment name derived from a file or directory path (`Iris_Model.pkl` -> `iris-model`). */
export function suggestName(path: string): string {
  const base = baseName(path).replace(/\.(joblib|pkl|pickle)$/i, '');
  let name = base
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, NAME_MAX_LENGTH)
    .replace(/-+$/, '');
  if (!name) {
    name = 'model';
  }
  return name;
}

/** Model files this client offers to deploy (directories are MLflow models). */
export const MODEL_FILE = /\.(joblib|pkl|pickle)$/i;

/** The framework for a path: pickled files are scikit-learn, directories MLflow. */
export function frameworkFor(path: string, isDirectory: boolean): Framework | undefined {
  if (isDirectory) {
    return 'mlflow';
  }
  return MODEL_FILE.test(path) ? 'sklearn' : undefined;
}
