/** The left-sidebar bucket browser. */
import { Clipboard, Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import {
  addIcon,
  codeIcon,
  copyIcon,
  deleteIcon,
  downloadIcon,
  fileIcon,
  fileUploadIcon,
  folderIcon,
  moveUpIcon,
  newFolderIcon,
  refreshIcon,
  caretRightIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { bucketRow, folderRow, h, iconButton, IRowIcons, IRowTarget, objectRow, rowTarget } from './dom';
import { errorMessage } from './handler';
import { bucketIcon } from './icons';
import { filesFromDataTransfer, IFileToUpload, uploadFile, UploadView } from './upload';

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const ICONS: IRowIcons = {
  bucket: bucketIcon,
  folder: folderIcon,
  file: fileIcon,
  open: caretRightIcon,
  download: downloadIcon,
  copy: copyIcon,
  snippet: codeIcon,
  remove: deleteIcon
};

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
    refresh.addEventListener('click', () => void this.refresh());

    this._crumbs = h('div', { class: 'odh-breadcrumbs' });
    this._errorText = h('span', { class: 'odh-error-text' });
    const dismiss = h('button', { class: 'odh-error-dismiss jp-Button jp-mod-minimal', type: 'button', title: 'Dismiss' }, '×');
    dismiss.addEventListener('click', () => this.clearError());
    this._error = h('div', { class: 'odh-error', role: 'alert' }, this._errorText, dismiss);
    this._error.hidden = true;
    this._status = h('div', { class: 'odh-status', 'aria-live': 'polite' });
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
      this._error,
      this._status,
      this._uploads,
      h('div', { class: 'odh-listing' }, this._list, this._empty, this._loadMore),
      this._dropHint
    );
    for (const type of ['dragenter', 'dragover', 'dragleave', 'drop']) {
      this.node.addEventListener(type, e => this._onDrag(e as DragEvent));
    }
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
    await this.refresh();
  }

  /** Reload the current location from its first page. */
  async refresh(): Promise<void> {
    this._loaded = true;
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
    this._errorText.textContent = message;
    this._error.hidden = false;
  }

  clearError(): void {
    this._error.hidden = true;
    this._errorText.textContent = '';
  }

  showStatus(message: string): void {
    this._status.textContent = message;
    window.clearTimeout(this._statusTimer);
    this._statusTimer = window.setTimeout(() => (this._status.textContent = ''), 5000);
  }

  async newBucket(): Promise<void> {
    const result = await InputDialog.getText({
      title: 'New bucket',
      label: 'Name (3–63 characters: a–z, 0–9, "." and "-")',
      placeholder: 'my-data',
      okLabel: 'Create'
    });
    const name = (result.value ?? '').trim();
    if (!result.button.accept || !name) {
      return;
    }
    if (!BUCKET_NAME.test(name)) {
      this.showError(`"${name}" is not a valid bucket name: use 3–63 characters a–z, 0–9, "." and "-", starting and ending with a letter or digit.`);
      return;
    }
    await this._run(async () => {
      const bucket = await api.createBucket(name);
      this.showStatus(`Created bucket ${bucket.path || api.s3Path(name)}`);
      if (this._bucket === null) {
        await this.refresh();
      }
    });
  }

  async newFolder(): Promise<void> {
    const bucket = this._bucket;
    if (bucket === null) {
      this.showError('Open a bucket first.');
      return;
    }
    const result = await InputDialog.getText({ title: 'New folder', label: 'Folder name', okLabel: 'Create' });
    const name = (result.value ?? '').trim().replace(/^\/+|\/+$/g, '');
    if (!result.button.accept || !name) {
      return;
    }
    const prefix = this._prefix;
    await this._run(async () => {
      await api.createFolder(bucket, `${prefix}${name}/`);
      this.showStatus(`Created folder ${api.s3Path(bucket, `${prefix}${name}/`)}`);
      await this._refreshIfAt(bucket, prefix);
    });
  }

  /** Upload files to the open folder, one after the other, each with its progress bar. */
  async uploadFiles(files: IFileToUpload[]): Promise<void> {
    const bucket = this._bucket;
    if (bucket === null) {
      this.showError('Open a bucket first: files are uploaded into the open bucket and folder.');
      return;
    }
    const prefix = this._prefix;
    const jobs = files.map(f => {
      const key = prefix + f.relativePath;
      const view = new UploadView(bucket, key, f.file.size);
      this._uploads.append(view.node);
      return { file: f.file, key, view };
    });
    let ok = 0;
    for (const job of jobs) {
      if (job.view.controller.signal.aborted) {
        job.view.fail(new DOMException('cancelled', 'AbortError'));
        continue;
      }
      try {
        await uploadFile(bucket, job.key, job.file, loaded => job.view.update(loaded), job.view.controller.signal);
        job.view.done();
        ok++;
      } catch (error) {
        job.view.fail(error);
        if (!job.view.controller.signal.aborted) {
          this.showError(`Upload of ${api.s3Path(bucket, job.key)} failed: ${errorMessage(error)}`);
        }
      }
    }
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
    const isFolder = target.key === undefined;
    if (isFolder && !target.prefix) {
      return false;
    }
    const result = await showDialog({
      title: isFolder ? 'Delete folder' : 'Delete object',
      body: isFolder
        ? `Delete ${target.path} and everything in it? This cannot be undone.`
        : `Delete ${target.path}? This cannot be undone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return false;
    }
    return this._run(async () => {
      const reply = isFolder
        ? await api.deletePrefix(target.bucket, target.prefix as string)
        : await api.deleteObject(target.bucket, target.key as string);
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

  private async _run<T>(fn: () => Promise<T>, fallback?: T): Promise<T> {
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
      if (gen === this._gen && !append) {
        this.clearError();
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
    const crumb = (label: string, bucket: string | null, prefix: string): HTMLElement => {
      const el = h('button', { class: 'odh-crumb odh-link', type: 'button', title: bucket === null ? 'All buckets' : api.s3Path(bucket, prefix) }, label);
      el.addEventListener('click', () => void this.navigate(bucket, prefix));
      return el;
    };
    const parts: HTMLElement[] = [crumb('Buckets', null, '')];
    if (this._bucket !== null) {
      parts.push(crumb(this._bucket, this._bucket, ''));
      let acc = '';
      for (const segment of this._prefix.split('/').slice(0, -1)) {
        acc += segment + '/';
        parts.push(crumb(segment || '(empty)', this._bucket, acc));
      }
    }
    this._crumbs.textContent = '';
    parts.forEach((p, i) => {
      if (i) {
        this._crumbs.append(h('span', { class: 'odh-crumb-sep' }, '/'));
      }
      this._crumbs.append(p);
    });
    parts[parts.length - 1].classList.add('odh-crumb-current');
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

  private _onDrag(event: DragEvent): void {
    const dt = event.dataTransfer;
    if (!dt || !Array.from(dt.types).includes('Files')) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    if (event.type === 'dragenter' || event.type === 'dragover') {
      dt.dropEffect = this._bucket === null ? 'none' : 'copy';
      this.node.classList.add('odh-drop-target');
    } else if (event.type === 'dragleave') {
      if (!this.node.contains(event.relatedTarget as Node | null)) {
        this.node.classList.remove('odh-drop-target');
      }
    } else if (event.type === 'drop') {
      this.node.classList.remove('odh-drop-target');
      if (this._bucket === null) {
        this.showError('Open a bucket first: files are uploaded into the open bucket and folder.');
        return;
      }
      void filesFromDataTransfer(dt)
        .then(files => this.uploadFiles(files))
        .catch(error => this.showError(errorMessage(error)));
    }
  }

  private _options: IBucketBrowserOptions;
  private _bucket: string | null = null;
  private _prefix = '';
  private _nextToken: string | null = null;
  private _gen = 0;
  private _loaded = false;
  private _statusTimer = 0;
  private _input: HTMLInputElement;
  private _upButton: HTMLButtonElement;
  private _folderButton: HTMLButtonElement;
  private _uploadButton: HTMLButtonElement;
  private _crumbs: HTMLElement;
  private _error: HTMLElement;
  private _errorText: HTMLElement;
  private _status: HTMLElement;
  private _uploads: HTMLElement;
  private _list: HTMLUListElement;
  private _empty: HTMLElement;
  private _loadMore: HTMLButtonElement;
  private _dropHint: HTMLElement;
}
