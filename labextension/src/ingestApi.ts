/**
 * Typed calls of the Kafka ingestion REST API (`{baseUrl}odh/api/ingestions...`), the client-side
 * rules for the dialog (the same as odh_spawner/ingest/spec.py) and the plan shown before submitting.
 */
import { requestAPI, seg } from './handler';

export type IngestFormat = 'jsonl' | 'parquet';
export type IngestAction = 'pause' | 'resume' | 'stop';

export interface IPartitionStatus {
  committed: number | null;
  end: number | null;
  lag: number | null;
}

/** What a user chooses when creating an ingestion. */
export interface IIngestSettings {
  name: string;
  topic: string;
  bucket: string;
  prefix: string;
  format: IngestFormat;
  flush_records: number;
  flush_seconds: number;
  partition_by: 'hour' | null;
}

/** An ingestion as the API describes it: its settings, its owner and its live status. */
export interface IIngestion extends IIngestSettings {
  owner: string;
  state: string;
  desired: string;
  records: number;
  bytes: number;
  objects: number;
  records_per_second: number;
  bytes_per_second: number;
  partitions: Record<string, IPartitionStatus>;
  lag: number;
  last_object: string | null;
  last_object_at: number | null;
  last_error: string | null;
  hint: string | null;
  created: number;
  updated: number;
  restarts: number;
}

export interface IIngestedObject {
  key: string;
  size: number;
  partition: number;
  first: number;
  last: number;
  records: number;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function ingestionPath(name: string, rest = ''): string {
  return `ingestions/${seg(name)}${rest}`;
}

export async function listIngestions(): Promise<IIngestion[]> {
  const reply = await requestAPI<{ ingestions: IIngestion[] }>('ingestions');
  return reply?.ingestions ?? [];
}

export function getIngestion(name: string): Promise<IIngestion> {
  return requestAPI<IIngestion>(ingestionPath(name));
}

export function createIngestion(settings: IIngestSettings): Promise<IIngestion> {
  return requestAPI<IIngestion>('ingestions', { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(settings) });
}

export function ingestionAction(name: string, action: IngestAction): Promise<IIngestion> {
  return requestAPI<IIngestion>(ingestionPath(name, `/${action}`), { method: 'POST', headers: JSON_HEADERS, body: '{}' });
}

/** The settings a running ingestion may change (PATCH): nothing is lost or written twice. */
export type IngestChanges = Partial<Pick<IIngestSettings, 'prefix' | 'format' | 'flush_records' | 'flush_seconds' | 'partition_by'>>;

export function updateIngestion(name: string, changes: IngestChanges): Promise<IIngestion> {
  return requestAPI<IIngestion>(ingestionPath(name), { method: 'PATCH', headers: JSON_HEADERS, body: JSON.stringify(changes) });
}

/** What differs between an ingestion's settings and the edited ones (only what may change). */
export function changedSettings(current: IIngestSettings, edited: IIngestSettings): IngestChanges {
  const changes: IngestChanges = {};
  if (normalizePrefix(edited.prefix) !== normalizePrefix(current.prefix)) {
    changes.prefix = edited.prefix;
  }
  if (edited.format !== current.format) {
    changes.format = edited.format;
  }
  if (edited.flush_records !== current.flush_records) {
    changes.flush_records = edited.flush_records;
  }
  if (edited.flush_seconds !== current.flush_seconds) {
    changes.flush_seconds = edited.flush_seconds;
  }
  if ((edited.partition_by ?? null) !== (current.partition_by ?? null)) {
    changes.partition_by = edited.partition_by;
  }
  return changes;
}

export function deleteIngestion(name: string): Promise<{ deleted: string }> {
  return requestAPI<{ deleted: string }>(ingestionPath(name), { method: 'DELETE' });
}

export async function listIngestedObjects(name: string, limit = 1000): Promise<IIngestedObject[]> {
  const reply = await requestAPI<{ objects: IIngestedObject[] }>(ingestionPath(name, `/objects?limit=${limit}`));
  return reply?.objects ?? [];
}

/* The rules of odh_spawner/ingest/spec.py. */
export const FORMATS: IngestFormat[] = ['jsonl', 'parquet'];
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export const TOPIC_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;
export const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
export const MAX_FLUSH_RECORDS = 1_000_000;
export const MAX_FLUSH_SECONDS = 3600;
export const DEFAULT_FLUSH_RECORDS = 10_000;
export const DEFAULT_FLUSH_SECONDS = 60;

/** The key prefix as the platform stores it ('' or 'a/b/'), or null when it is not a valid prefix. */
export function normalizePrefix(prefix: string): string | null {
  if (prefix.length > 512 || prefix.startsWith('/') || !/^[A-Za-z0-9._=/-]*$/.test(prefix)) {
    return null;
  }
  const parts = prefix.split('/').filter(p => p);
  if (parts.some(p => p === '.' || p === '..')) {
    return null;
  }
  return parts.length ? parts.join('/') + '/' : '';
}

/** The default ingestion name of a topic and a bucket (as server_extension.ingest.default_name). */
export function defaultName(topic: string, bucket: string): string {
  const raw = `${topic}-${bucket}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '');
  return raw || 'ingestion';
}

/** Why the platform would refuse these settings (field, message), or null when it would take them. */
export function settingsProblem(s: IIngestSettings): { field: string; message: string } | null {
  if (!NAME_PATTERN.test(s.name)) {
    return { field: 'name', message: 'A name is 1–40 lowercase letters, digits and "-", starting and ending with a letter or digit.' };
  }
  if (!TOPIC_PATTERN.test(s.topic) || s.topic === '.' || s.topic === '..') {
    return { field: 'topic', message: 'Enter a Kafka topic name (letters, digits, ".", "_", "-").' };
  }
  if (!BUCKET_PATTERN.test(s.bucket) || s.bucket.includes('..')) {
    return { field: 'bucket', message: 'Enter a bucket name (3–63 lowercase letters, digits, "." and "-").' };
  }
  if (normalizePrefix(s.prefix) === null) {
    return { field: 'prefix', message: 'A prefix uses letters, digits and ".", "_", "=", "-", "/" only, with no leading "/", no "." or ".." folder and at most 512 characters.' };
  }
  if (!FORMATS.includes(s.format)) {
    return { field: 'format', message: `The format is one of ${FORMATS.join(', ')}.` };
  }
  if (!Number.isInteger(s.flush_records) || s.flush_records < 1 || s.flush_records > MAX_FLUSH_RECORDS) {
    return { field: 'flush_records', message: `Flush records is a whole number from 1 to ${MAX_FLUSH_RECORDS.toLocaleString('en-US')}.` };
  }
  if (!Number.isFinite(s.flush_seconds) || s.flush_seconds < 0.1 || s.flush_seconds > MAX_FLUSH_SECONDS) {
    return { field: 'flush_seconds', message: `Flush seconds is a number from 0.1 to ${MAX_FLUSH_SECONDS}.` };
  }
  return null;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** 'dt=2026-11-26/hour=11' (UTC) of a time. */
export function hourOf(date: Date): string {
  return `dt=${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}/hour=${pad(date.getUTCHours(), 2)}`;
}

/** The plan shown before submitting (as server_extension.ingest.plan): example key, flush rule, offsets. */
export function planOf(s: IIngestSettings, now = new Date()): { label: string; text: string }[] {
  const prefix = normalizePrefix(s.prefix) ?? '';
  const hourly = s.partition_by === 'hour';
  const folder = `${prefix}topic=${s.topic}/partition=0/` + (hourly ? `${hourOf(now)}/` : '');
  const key = `${folder}${s.topic}+0+${pad(0, 10)}+${pad(s.flush_records - 1, 10)}.${s.format}`;
  return [
    { label: 'Reads', text: `Kafka topic "${s.topic}", every partition, from the earliest record not yet ingested` },
    { label: 'Example key', text: `s3://${s.bucket}/${key}` },
    {
      label: 'Flush',
      text:
        `an object closes at ${s.flush_records.toLocaleString('en-US')} records, or ${s.flush_seconds} s after its first record ` +
        '(even when no new record arrives)' + (hourly ? ', or when the hour changes' : '')
    },
    { label: 'Offsets', text: 'taken from the objects already in your bucket (only you can write there): every record lands exactly once, whatever anyone commits on the broker' }
  ];
}

/** Which actions make sense in a state. */
export function enabledActions(state: string): Record<IngestAction, boolean> {
  const idle = state === 'paused' || state === 'stopped';
  return { pause: !idle, resume: idle, stop: state !== 'stopped' };
}

/** 'p0: 0 · p1: 12' by partition number ('?' when unknown). */
export function lagText(partitions: Record<string, IPartitionStatus>): string {
  const items = Object.entries(partitions ?? {}).sort((a, b) => Number(a[0]) - Number(b[0]));
  return items.length ? items.map(([p, v]) => `p${p}: ${v.lag === null || v.lag === undefined ? '?' : v.lag.toLocaleString('en-US')}`).join(' · ') : '–';
}

/** The topics of the platform's Kafka, for suggestions (empty when Kafka does not answer). */
export async function listTopics(): Promise<{ name: string; partitions: number }[]> {
  const reply = await requestAPI<{ topics: { name: string; partitions: number }[] }>('kafka/topics');
  return reply?.topics ?? [];
}
