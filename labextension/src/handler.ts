import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Where the odh server extension serves its REST API, relative to the server base URL. */
export const API_NAMESPACE = 'odh/api';

/**
 * The absolute URL of an API endpoint, e.g. `apiUrl('buckets')` ->
 * `http://host/user/alice/odh/api/buckets`. `endPoint` may carry a query string.
 */
export function apiUrl(endPoint = ''): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
}

/** Encode one path segment (a bucket name, an upload id, a part number). */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}

/** A query string from defined, non-empty parameters: `?a=1&b=x%2Fy`, or ''. */
export function query(
  params: Record<string, string | number | boolean | null | undefined>
): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') {
      continue;
    }
    parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * Call the odh REST API and return the decoded JSON body (or `undefined` for an empty one).
 *
 * Uses `ServerConnection.makeRequest`, so the base URL (`/user/alice/`), the token and the
 * `X-XSRFToken` header are handled the same way as for JupyterLab's own requests. A non-2xx
 * answer throws `ServerConnection.ResponseError` whose `message` is the server's JSON
 * `message` (or the HTTP status text when the body is not JSON).
 */
export async function requestAPI<T>(endPoint = '', init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const requestUrl = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(requestUrl, init, settings);
  } catch (error) {
    if (error instanceof ServerConnection.NetworkError) {
      throw error;
    }
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: any = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch (error) {
      data = text;
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data === 'object' && typeof data.message === 'string'
        ? data.message
        : `${response.status} ${response.statusText || 'request failed'}`.trim();
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

/** A readable message for anything thrown by `requestAPI` (or elsewhere). */
export function errorMessage(error: unknown): string {
  if (error instanceof ServerConnection.NetworkError) {
    return `Cannot reach the notebook server: ${error.message}`;
  }
  if (error instanceof Error) {
    return error.message || String(error);
  }
  return String(error);
}

/** The HTTP status of a `requestAPI` failure, or 0. */
export function errorStatus(error: unknown): number {
  return error instanceof ServerConnection.ResponseError ? error.response.status : 0;
}

/** The `_xsrf` cookie (last one wins, like tornado and ServerConnection), if any. */
export function xsrfCookie(): string | undefined {
  let value: string | undefined;
  for (const part of document.cookie.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith('_xsrf=')) {
      value = trimmed.substring('_xsrf='.length);
    }
  }
  return value;
}
