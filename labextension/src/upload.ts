/**
 * Uploads: one request for small files, the resumable multipart flow for large ones,
 * with a progress element per file.
 */
import { ServerConnection } from '@jupyterlab/services';
import { closeIcon } from '@jupyterlab/ui-components';

import {
  abortUpload,
  completeUpload,
  IObject,
  putObject,
  putPart,
  startUpload
} from './api';
import { errorMessage, errorStatus } from './handler';
import { formatBytes } from './units';

/** Files up to this size go in one `PUT /buckets/{b}/object`. */
export const SINGLE_PUT_MAX_BYTES = 8 * 1024 * 1024;

/** Parts sent at the same time in a multipart upload. */
const PART_CONCURRENCY = 3;

export type ProgressCallback = (loaded: number, total: number) => void;

/**
 * Upload `file` to `bucket`/`key`. Reports progress as bytes are confirmed by the server
 * (once for a small file, after every part for a large one). On any failure of a multipart
 * upload the upload is aborted on the server (DELETE) before the error is rethrown.
 */
export async function uploadFile(
  bucket: string,
  key: string,
  file: Blob,
  onProgress: ProgressCallback,
  signal?: AbortSignal
): Promise<IObject> {
  onProgress(0, file.size);
  if (file.size <= SINGLE_PUT_MAX_BYTES) {
    try {
      const obj = await putObject(bucket, key, file, signal);
      onProgress(file.size, file.size);
      return obj;
    } catch (error) {
      // A server with a smaller single-request limit answers 413: use the multipart flow.
      if (errorStatus(error) !== 413) {
        throw error;
      }
    }
  }
  return multipartUpload(bucket, key, file, onProgress, signal);
}

async function multipartUpload(
  bucket: string,
  key: string,
  file: Blob,
  onProgress: ProgressCallback,
  signal?: AbortSignal
): Promise<IObject> {
  const start = await startUpload(bucket, key, file.size, file.type || undefined, signal);
  const { upload_id: uploadId, part_size: partSize, parts } = start;
  try {
    if (!(partSize > 0) || parts < 1 || Math.ceil(file.size / partSize) > parts) {
      throw new Error(`The server proposed an unusable part size (${partSize} × ${parts}).`);
    }
    // One failing part stops the others (inner), as does the caller's cancel (signal).
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    signal?.addEventListener('abort', onAbort);
    const etags: { part_number: number; etag: string }[] = [];
    let failure: unknown = undefined;
    let loaded = 0;
    let next = 1;
    const worker = async (): Promise<void> => {
      while (next <= parts && !inner.signal.aborted) {
        const n = next++;
        const blob = file.slice((n - 1) * partSize, Math.min(n * partSize, file.size));
        try {
          const part = await putPart(bucket, uploadId, key, n, blob, inner.signal);
          etags.push({ part_number: n, etag: part.etag });
        } catch (error) {
          failure = failure ?? error;
          inner.abort();
          return;
        }
        loaded += blob.size;
        onProgress(loaded, file.size);
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < Math.min(PART_CONCURRENCY, parts); i++) {
      workers.push(worker());
    }
    await Promise.all(workers);
    signal?.removeEventListener('abort', onAbort);
    if (failure !== undefined || signal?.aborted) {
      throw failure ?? new DOMException('Upload cancelled', 'AbortError');
    }
    etags.sort((a, b) => a.part_number - b.part_number);
    return await completeUpload(bucket, uploadId, key, etags, signal);
  } catch (error) {
    // Best effort: discard the parts already stored. Keep the original error.
    await abortUpload(bucket, uploadId, key).catch(() => undefined);
    throw error;
  }
}

/**
 * Upload files below `prefix`, one after the other, each with its progress element added to
 * `container`. Failures go to `onError` (not cancellations). Returns how many succeeded.
 */
export async function uploadAll(
  container: HTMLElement,
  bucket: string,
  prefix: string,
  files: IFileToUpload[],
  onError: (message: string) => void
): Promise<number> {
  const jobs = files.map(f => {
    const key = prefix + f.relativePath;
    const view = new UploadView(bucket, key, f.file.size);
    container.append(view.node);
    return { file: f.file, key, view };
  });
  let ok = 0;
  for (const { file, key, view } of jobs) {
    const signal = view.controller.signal;
    if (signal.aborted) {
      view.fail(new DOMException('Upload cancelled', 'AbortError'));
      continue;
    }
    try {
      view.start();
      await uploadFile(bucket, key, file, loaded => view.update(loaded), signal);
      view.done();
      ok++;
    } catch (error) {
      view.fail(error);
      if (!signal.aborted) {
        onError(`Upload of s3://${bucket}/${key} failed: ${errorMessage(error)}`);
      }
    }
  }
  return ok;
}

/** A file with the key suffix it should get (its path below the drop, for dropped folders). */
export interface IFileToUpload {
  file: File;
  relativePath: string;
}

/**
 * The files of a drop, walking dropped folders (`webkitGetAsEntry`) so that their
 * structure is kept. Must be called synchronously from the `drop` handler.
 */
export function filesFromDataTransfer(dt: DataTransfer): Promise<IFileToUpload[]> {
  const entries: FileSystemEntry[] = [];
  const plain: IFileToUpload[] = [];
  const items = dt.items ? Array.from(dt.items) : [];
  for (const item of items) {
    if (item.kind !== 'file') {
      continue;
    }
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry) {
      entries.push(entry);
    } else {
      const file = item.getAsFile();
      if (file) {
        plain.push({ file, relativePath: file.name });
      }
    }
  }
  if (!items.length) {
    for (const file of Array.from(dt.files)) {
      plain.push({ file, relativePath: file.name });
    }
  }
  return Promise.all(entries.map(e => walkEntry(e, ''))).then(lists =>
    plain.concat(...lists)
  );
}

async function walkEntry(entry: FileSystemEntry, dir: string): Promise<IFileToUpload[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject)
    );
    return [{ file, relativePath: dir + entry.name }];
  }
  if (!entry.isDirectory) {
    return [];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries returns the listing in batches until an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject)
    );
    if (!batch.length) {
      break;
    }
    children.push(...batch);
  }
  const lists = await Promise.all(children.map(c => walkEntry(c, `${dir}${entry.name}/`)));
  return ([] as IFileToUpload[]).concat(...lists);
}

/**
 * The DOM of one upload: `.odh-upload-progress[data-key][data-state]` holding a name,
 * a `<progress>` and a status text, plus a cancel button while it runs.
 * `data-state` is `queued`, `uploading`, `done`, `error` or `cancelled`.
 */
export class UploadView {
  readonly node: HTMLElement;
  readonly controller = new AbortController();

  constructor(bucket: string, key: string, size: number) {
    this._size = size;
    const node = (this.node = document.createElement('div'));
    node.className = 'odh-upload-progress';
    node.dataset.key = key;
    node.dataset.bucket = bucket;
    node.title = `s3://${bucket}/${key}`;

    const name = document.createElement('span');
    name.className = 'odh-upload-name';
    name.textContent = key.split('/').pop() || key;
    this._progress = document.createElement('progress');
    this._progress.max = Math.max(size, 1);
    this._progress.value = 0;
    this._status = document.createElement('span');
    this._status.className = 'odh-upload-status';
    this._button = document.createElement('button');
    this._button.className = 'odh-upload-cancel';
    this._button.title = 'Cancel upload';
    this._button.dataset.action = 'cancel';
    this._button.append(closeIcon.element({ tag: 'span', className: 'odh-button-icon' }));
    this._button.addEventListener('click', () => {
      if (['queued', 'uploading'].includes(this.node.dataset.state ?? '')) {
        this.controller.abort();
      } else {
        this.node.remove();
      }
    });
    node.append(name, this._progress, this._status, this._button);
    this.node.dataset.state = 'queued';
    this._status.textContent = `Queued (${formatBytes(size)})`;
  }

  start(): void {
    this.node.dataset.state = 'uploading';
    this.update(0);
  }

  update(loaded: number): void {
    this._progress.value = this._size ? loaded : loaded > 0 ? 1 : 0;
    const pct = this._size ? Math.floor((100 * loaded) / this._size) : 0;
    this._status.textContent = `${pct}% of ${formatBytes(this._size)}`;
  }

  done(): void {
    this._progress.value = this._progress.max;
    this.node.dataset.state = 'done';
    this._status.textContent = `Uploaded ${formatBytes(this._size)}`;
    this._button.title = 'Dismiss';
    window.setTimeout(() => this.node.remove(), 6000);
  }

  fail(error: unknown): void {
    const cancelled =
      this.controller.signal.aborted ||
      (error instanceof Error && error.name === 'AbortError') ||
      (error instanceof ServerConnection.NetworkError && this.controller.signal.aborted);
    this.node.dataset.state = cancelled ? 'cancelled' : 'error';
    this._status.textContent = cancelled ? 'Cancelled' : `Failed: ${errorMessage(error)}`;
    this._button.title = 'Dismiss';
  }

  private _size: number;
  private _progress: HTMLProgressElement;
  private _status: HTMLElement;
  private _button: HTMLButtonElement;
}
