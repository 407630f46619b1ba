/**
 * Typed calls of the odh bucket REST API (server_extension/openapi.yaml).
 * Paths are relative to `{baseUrl}odh/api/`.
 */
import { apiUrl, query, requestAPI, seg, xsrfCookie } from './handler';

export interface IBucket {
  name: string;
  created?: string | null;
  path: string;
}

export interface IObject {
  key: string;
  name?: string;
  size: number;
  last_modified?: string | null;
  etag?: string;
  path: string;
}

export interface IFolder {
  prefix: string;
  name?: string;
  path: string;
}

export interface IPage {
  bucket: string;
  prefix: string;
  folders: IFolder[];
  objects: IObject[];
  next_token: string | null;
}

export interface IUploadStart {
  upload_id: string;
  key: string;
  part_size: number;
  parts: number;
}

export interface IPart {
  part_number: number;
  etag: string;
  size: number;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const RAW_HEADERS = { 'Content-Type': 'application/octet-stream' };

function bucketPath(bucket: string, rest = ''): string {
  return `buckets/${seg(bucket)}${rest}`;
}

export async function listBuckets(): Promise<IBucket[]> {
  const reply = await requestAPI<{ buckets: IBucket[] }>('buckets');
  return reply.buckets ?? [];
}

export function createBucket(name: string): Promise<IBucket> {
  return requestAPI<IBucket>('buckets', {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ name })
  });
}

export function listObjects(
  bucket: string,
  prefix: string,
  pageSize: number,
  continuationToken?: string | null,
  signal?: AbortSignal
): Promise<IPage> {
  const q = query({
    prefix,
    delimiter: '/',
    page_size: pageSize,
    continuation_token: continuationToken
  });
  return requestAPI<IPage>(bucketPath(bucket, `/objects${q}`), { signal });
}

export function deleteObject(bucket: string, key: string): Promise<{ deleted: number }> {
  return requestAPI(bucketPath(bucket, `/objects${query({ key })}`), { method: 'DELETE' });
}

export function deletePrefix(bucket: string, prefix: string): Promise<{ deleted: number }> {
  return requestAPI(bucketPath(bucket, `/objects${query({ prefix, confirm: 'true' })}`), {
    method: 'DELETE'
  });
}

export function createFolder(bucket: string, path: string): Promise<IFolder> {
  return requestAPI<IFolder>(bucketPath(bucket, '/folders'), {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ path })
  });
}

export function putObject(
  bucket: string,
  key: string,
  body: Blob,
  signal?: AbortSignal
): Promise<IObject> {
  return requestAPI<IObject>(bucketPath(bucket, `/object${query({ key })}`), {
    method: 'PUT',
    headers: RAW_HEADERS,
    body,
    signal
  });
}

export function startUpload(
  bucket: string,
  key: string,
  size: number,
  contentType?: string,
  signal?: AbortSignal
): Promise<IUploadStart> {
  const body: Record<string, unknown> = { key, size };
  if (contentType) {
    body.content_type = contentType;
  }
  return requestAPI<IUploadStart>(bucketPath(bucket, '/uploads'), {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify(body),
    signal
  });
}

function uploadPath(bucket: string, uploadId: string, rest: string, key: string): string {
  return bucketPath(bucket, `/uploads/${seg(uploadId)}${rest}${query({ key })}`);
}

export function putPart(
  bucket: string,
  uploadId: string,
  key: string,
  partNumber: number,
  body: Blob,
  signal?: AbortSignal
): Promise<IPart> {
  return requestAPI<IPart>(uploadPath(bucket, uploadId, `/parts/${seg(partNumber)}`, key), {
    method: 'PUT',
    headers: RAW_HEADERS,
    body,
    signal
  });
}

export function completeUpload(
  bucket: string,
  uploadId: string,
  key: string,
  parts: { part_number: number; etag: string }[],
  signal?: AbortSignal
): Promise<IObject> {
  return requestAPI<IObject>(uploadPath(bucket, uploadId, '/complete', key), {
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ parts }),
    signal
  });
}

export function abortUpload(bucket: string, uploadId: string, key: string): Promise<void> {
  return requestAPI<void>(uploadPath(bucket, uploadId, '', key), { method: 'DELETE' });
}

/**
 * The URL that streams an object's bytes. Like JupyterLab's own file downloads it carries
 * the `_xsrf` cookie value, for servers that check XSRF on cookie-authenticated GETs.
 */
export function downloadUrl(bucket: string, key: string): string {
  return apiUrl(bucketPath(bucket, `/download${query({ key, _xsrf: xsrfCookie() })}`));
}

/** `s3://bucket/key` for display and for the clipboard. */
export function s3Path(bucket: string, key = ''): string {
  return `s3://${bucket}/${key}`;
}
