/** The left-sidebar bucket browser. */
import { Clipboard } from '@jupyterlab/apputils';
import {
  addIcon,
  fileUploadIcon,
  moveUpIcon,
  newFolderIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { askBucketName, askFolderName, confirmDelete } from './dialogs';
import {
  breadcrumbs,
  bucketRow,
  folderRow,
  h,
  iconButton,
  ICONS,
  IRowTarget,
  Messages,
  objectRow,
  rowTarget
} from './dom';
import { installDropZone } from './dropzone';
import { FeatureGate } from './features';
import { errorMessage } from './handler';
import { bucketIcon } from './icons';
import { IFileToUpload, uploadAll } from './upload';

const NEED_BUCKET = 'Open a bucket first: files are uploaded into the open bucket and folder.';

export interface IBucketBrowserOptions {
  /** Insert a snippet for an object into the active notebook (the snippet command). */
  insertSnippet: (bucket: string, key: string) => Promise<unknown>;
}

export class BucketBrowser extends Widget {
  /** Objects per page (settings `pageSize`). */
  pageSize = 200;

  constructor(options: IBucketBrowserOptions) {
    super();
    this._options = options;
    this.id = 'odh-bucket-browser';
    this.addClass('odh-BucketBrowser');
    this.title.icon = bucketIcon;
    this.title.caption = 'Buckets';

    this._input = h('input', { type: 'file', multiple: '', class: 'odh-upload-input' });
    this._input.style.display = 'none';
    this._input.addEventListener('change', () => {
      const files = Array.from(this._input.files ?? []);
      this._input.value = '';
      void this.uploadFiles(files.map(file => ({ file, relativePath: file.name })));
    });
    this._upButton = iconButton(moveUpIcon, 'Up one level', { id: 'odh-up-button' });
    this._upButton.addEventListener('click', () => void this.goUp());
    this._folderButton = iconButton(newFolderIcon, 'New folder', { id: 'odh-new-folder-button' });
    this._folderButton.addEventListener('click', () => void this.newFolder());
    this._uploadButton = iconButton(fileUploadIcon, 'Upload files', { id: 'odh-upload-button' });
    this._uploadButton.addEventListener('click', () => this._input.click());
    const newBucket = iconButton(addIcon, 'New bucket', { id: 'odh-new-bucket-button' });
    newBucket.addEventListener('click', () => void this.newBucket());
    const refresh = iconButton(refreshIcon, 'Refresh', { id: 'odh-refresh-button' });
    refresh.addEventListener('click', () => {
      this.clearError();
      void this.refresh();
    });

    this._crumbs = h('div', { class: 'odh-breadcrumbs' });
    this._uploads = h('div', { class: 'odh-uploads' });
    this._list = h('ul', { class: 'odh-list' });
    this._list.addEventListener('click', e => this._onListClick(e));
    this._list.addEventListener('dblclick', e => this._onListDblClick(e));
    // Right-click selects the row, so the context menu commands act on it.
    this._list.addEventListener('contextmenu', e => this._select((e.target as HTMLElement).closest<HTMLElement>('.odh-row')));
    this._empty = h('div', { class: 'odh-empty' });
    this._loadMore = h('button', { id: 'odh-load-more', class: 'odh-load-more jp-Button jp-mod-styled', type: 'button' }, 'Load more');
    this._loadMore.hidden = true;
    this._loadMore.addEventListener('click', () => void this.loadMore());
    this._dropHint = h('div', { class: 'odh-drop-hint' });

    this.node.append(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, 'Buckets'), h('span', { class: 'odh-loading-indicator' }, 'Loading…')),
      h('div', { class: 'odh-toolbar' }, refresh, newBucket, this._folderButton, this._uploadButton, this._input),
      h('div', { class: 'odh-nav' }, this._upButton, this._crumbs),
      this._messages.error,
      this._messages.status,
      this._uploads,
      h('div', { class: 'odh-listing' }, this._list, this._empty, this._loadMore),
      this._dropHint
    );
    installDropZone(this.node, {
      canDrop: () => this._bucket !== null,
      refusal: NEED_BUCKET,
      onFiles: files => this.uploadFiles(files),
      onError: message => this.showError(message)
    });
    this._renderNav();
  }

  /** The open bucket, or null on the bucket list. */
  get bucket(): string | null {
    return this._bucket;
  }

  /** The open folder inside the bucket ('' or ending in '/'). */
  get prefix(): string {
    return this._prefix;
  }

  /** The selected row's target (for commands without arguments). */
  get selected(): IRowTarget | null {
    const row = this._list.querySelector<HTMLElement>('.odh-row.odh-selected');
    return row ? rowTarget(row) : null;
  }

  /** Show `bucket`/`prefix` (bucket null: the bucket list), fetching the first page. */
  async navigate(bucket: string | null, prefix = ''): Promise<void> {
    this._bucket = bucket;
    this._prefix = bucket === null ? '' : prefix;
    this._renderNav();
    this.clearError();
    await this.refresh();
  }

  /** Reload the current location from its first page. */
  async refresh(): Promise<void> {
    this._loaded = true;
    if (!(await this.gate.isOn())) {
      return; // no buckets on this server: the reason is shown instead
    }
    await this._load(false);
  }

  async loadMore(): Promise<void> {
    if (this._bucket !== null && this._nextToken) {
      await this._load(true);
    }
  }

  async goUp(): Promise<void> {
    if (this._bucket === null) {
      return;
    }
    if (!this._prefix) {
      return this.navigate(null);
    }
    const trimmed = this._prefix.slice(0, -1);
    return this.navigate(this._bucket, trimmed.slice(0, trimmed.lastIndexOf('/') + 1));
  }

  showError(message: string): void {
    this._messages.showError(message);
  }

  clearError(): void {
    this._messages.clearError();
  }

  showStatus(message: string): void {
    this._messages.showStatus(message);
  }

  async newBucket(): Promise<void> {
    await this._run(async () => {
      const name = await askBucketName();
      if (name === null) {
        return;
      }
      const bucket = await api.createBucket(name);
      this.showStatus(`Created bucket ${bucket.path || api.s3Path(name)}`);
      if (this._bucket === null) {
        await this.refresh();
      }
    });
  }

  async newFolder(): Promise<void> {
    const bucket = this._bucket;
    const prefix = this._prefix;
    if (bucket === null) {
      this.showError(NEED_BUCKET);
      return;
    }
    await this._run(async () => {
      const name = await askFolderName();
      if (name === null) {
        return;
      }
      await api.createFolder(bucket, `${prefix}${name}/`);
      this.showStatus(`Created folder ${api.s3Path(bucket, `${prefix}${name}/`)}`);
      await this._refreshIfAt(bucket, prefix);
    });
  }

  /** Upload files to the open folder, one after the other, each with its progress bar. */
  async uploadFiles(files: IFileToUpload[]): Promise<void> {
    const bucket = this._bucket;
    if (bucket === null) {
      this.showError(NEED_BUCKET);
      return;
    }
    const prefix = this._prefix;
    const ok = await uploadAll(this._uploads, bucket, prefix, files, message => this.showError(message));
    if (ok) {
      this.showStatus(`Uploaded ${ok} file${ok === 1 ? '' : 's'} to ${api.s3Path(bucket, prefix)}`);
      await this._refreshIfAt(bucket, prefix);
    }
  }

  /** Let the browser stream the object through a temporary `<a download>`. */
  download(bucket: string, key: string): void {
    const a = h('a', { href: api.downloadUrl(bucket, key), download: key.split('/').pop() || 'download' });
    a.style.display = 'none';
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  copyPath(path: string): void {
    Clipboard.copyToSystem(path);
    this.showStatus(`Copied ${path}`);
  }

  /** Delete an object or (with a prefix) a whole folder, after confirmation. */
  async remove(target: IRowTarget): Promise<boolean> {
    if (target.key === undefined && !target.prefix) {
      return false;
    }
    if (!(await confirmDelete(target))) {
      return false;
    }
    return this._run(async () => {
      const reply =
        target.key === undefined
          ? await api.deletePrefix(target.bucket, target.prefix as string)
          : await api.deleteObject(target.bucket, target.key);
      const n = reply?.deleted ?? 0;
      this.showStatus(`Deleted ${n} object${n === 1 ? '' : 's'} under ${target.path}`);
      this._findRow(target)?.remove();
      this._renderEmpty();
      return true;
    }, false);
  }

  /** Carry out a row action (the per-row buttons and the context menu). */
  async act(action: string, target: IRowTarget): Promise<void> {
    switch (action) {
      case 'open':
        if (target.key === undefined) {
          await this.navigate(target.bucket, target.prefix ?? '');
        }
        break;
      case 'download':
        if (target.key !== undefined) {
          this.download(target.bucket, target.key);
        }
        break;
      case 'copy':
        this.copyPath(target.path);
        break;
      case 'delete':
        await this.remove(target);
        break;
      case 'snippet':
        if (target.key !== undefined) {
          await this._run(() => this._options.insertSnippet(target.bucket, target.key as string));
        }
        break;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (!this._loaded) {
      void this.refresh();
    }
  }

  /** Whether the server has object storage for this panel (when not, the panel shows why instead). */
  readonly gate = new FeatureGate(this.node, 'buckets', 'Buckets');

  /** Run a user action: a new action clears the previous error; a failure shows its message. */
  private async _run<T>(fn: () => Promise<T>, fallback?: T): Promise<T> {
    this.clearError();
    try {
      return await fn();
    } catch (error) {
      this.showError(errorMessage(error));
      return fallback as T;
    }
  }

  private async _refreshIfAt(bucket: string, prefix: string): Promise<void> {
    if (this._bucket === bucket && this._prefix === prefix) {
      await this.refresh();
    }
  }

  private async _load(append: boolean): Promise<void> {
    const gen = append ? this._gen : ++this._gen;
    const bucket = this._bucket;
    if (!append) {
      this._list.textContent = '';
      this._nextToken = null;
    }
    this._setLoading(true);
    try {
      if (bucket === null) {
        const buckets = await api.listBuckets();
        if (gen === this._gen) {
          this._list.append(...buckets.map(b => bucketRow(b, ICONS)));
        }
      } else {
        const page = await api.listObjects(bucket, this._prefix, this.pageSize, append ? this._nextToken : null);
        if (gen === this._gen) {
          this._list.append(
            ...page.folders.map(f => folderRow(bucket, this._prefix, f, ICONS)),
            ...page.objects.map(o => objectRow(bucket, this._prefix, o, ICONS))
          );
          this._nextToken = page.next_token || null;
        }
      }
    } catch (error) {
      if (gen === this._gen) {
        this.showError(errorMessage(error));
      }
    } finally {
      if (gen === this._gen) {
        this._setLoading(false);
        this._renderEmpty();
      }
    }
  }

  private _setLoading(loading: boolean): void {
    this.node.classList.toggle('odh-loading', loading);
    this._loadMore.disabled = loading;
    this._loadMore.hidden = !this._nextToken;
  }

  private _renderEmpty(): void {
    const empty = !this._list.querySelector('.odh-row');
    this._empty.textContent = !empty || this.node.classList.contains('odh-loading')
      ? ''
      : this._bucket === null
        ? 'No buckets yet: create one with the + button.'
        : 'Empty. Upload files with the upload button or drop them here.';
  }

  private _renderNav(): void {
    const inBucket = this._bucket !== null;
    this._upButton.disabled = !inBucket;
    this._folderButton.disabled = !inBucket;
    this._uploadButton.disabled = !inBucket;
    this._crumbs.textContent = '';
    this._crumbs.append(...breadcrumbs(this._bucket, this._prefix, (b, p) => void this.navigate(b, p)));
    this._dropHint.textContent = inBucket
      ? `Drop files to upload them to ${api.s3Path(this._bucket as string, this._prefix)}`
      : 'Open a bucket to upload files into it';
  }

  private _findRow(target: IRowTarget): HTMLElement | null {
    for (const row of Array.from(this._list.querySelectorAll<HTMLElement>('.odh-row'))) {
      const t = rowTarget(row);
      if (t && t.bucket === target.bucket && t.key === target.key && t.prefix === target.prefix) {
        return row;
      }
    }
    return null;
  }

  private _onListClick(event: MouseEvent): void {
    const el = event.target as HTMLElement;
    const row = el.closest<HTMLElement>('.odh-row');
    if (!row) {
      return;
    }
    this._select(row);
    const action = el.closest<HTMLElement>('[data-action]')?.dataset.action;
    const target = rowTarget(row);
    if (action && target) {
      event.stopPropagation();
      void this.act(action, target);
    }
  }

  private _select(row: HTMLElement | null): void {
    if (row) {
      this._list.querySelectorAll('.odh-selected').forEach(r => r.classList.remove('odh-selected'));
      row.classList.add('odh-selected');
    }
  }

  private _onListDblClick(event: MouseEvent): void {
    const row = (event.target as HTMLElement).closest<HTMLElement>('.odh-row');
    const target = row ? rowTarget(row) : null;
    if (target && target.key === undefined && !(event.target as HTMLElement).closest('[data-action]')) {
      void this.act('open', target);
    }
  }

  private _options: IBucketBrowserOptions;
  private _bucket: string | null = null;
  private _prefix = '';
  private _nextToken: string | null = null;
  private _gen = 0;
  private _loaded = false;
  private _input: HTMLInputElement;
  private _upButton: HTMLButtonElement;
  private _folderButton: HTMLButtonElement;
  private _uploadButton: HTMLButtonElement;
  private _crumbs: HTMLElement;
  private _messages = new Messages();
  private _uploads: HTMLElement;
  private _list: HTMLUListElement;
  private _empty: HTMLElement;
  private _loadMore: HTMLButtonElement;
  private _dropHint: HTMLElement;
}
