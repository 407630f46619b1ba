/** Small DOM helpers and the row markup of the bucket browser. */
import {
  caretRightIcon,
  codeIcon,
  copyIcon,
  deleteIcon,
  downloadIcon,
  fileIcon,
  folderIcon,
  LabIcon
} from '@jupyterlab/ui-components';

import { IBucket, IFolder, IObject } from './api';
import { bucketIcon } from './icons';
import { formatBytes } from './units';

/** Create an element with a class, attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') {
      el.className = value;
    } else {
      el.setAttribute(name, value);
    }
  }
  el.append(...children);
  return el;
}

/** A minimal icon button; `attrs` typically carries `id` or `data-action`. */
export function iconButton(
  icon: LabIcon,
  title: string,
  attrs: Record<string, string> = {},
  label?: string
): HTMLButtonElement {
  const button = h('button', {
    class: 'odh-button',
    type: 'button',
    title,
    'aria-label': title,
    ...attrs
  });
  button.append(icon.element({ tag: 'span', className: 'odh-button-icon' }));
  if (label) {
    button.append(h('span', { class: 'odh-button-label' }, label));
  }
  return button;
}

/** What a row stands for: a bucket, a folder (prefix) or an object (key). */
export interface IRowTarget {
  bucket: string;
  key?: string;
  prefix?: string;
  path: string;
}

/** Read the target back from a `.odh-row` element. */
export function rowTarget(row: HTMLElement): IRowTarget | null {
  const bucket = row.dataset.rowBucket ?? row.dataset.bucket;
  if (!bucket || !row.classList.contains('odh-row')) {
    return null;
  }
  const key = row.dataset.key;
  const prefix = row.dataset.prefix;
  return { bucket, key, prefix, path: `s3://${bucket}/${key ?? prefix ?? ''}` };
}

export interface IRowIcons {
  bucket: LabIcon;
  folder: LabIcon;
  file: LabIcon;
  open: LabIcon;
  download: LabIcon;
  copy: LabIcon;
  snippet: LabIcon;
  remove: LabIcon;
}

export const ICONS: IRowIcons = {
  bucket: bucketIcon,
  folder: folderIcon,
  file: fileIcon,
  open: caretRightIcon,
  download: downloadIcon,
  copy: copyIcon,
  snippet: codeIcon,
  remove: deleteIcon
};

function row(
  kind: string,
  data: Record<string, string>,
  icon: LabIcon,
  name: string,
  title: string,
  detail: string,
  actions: HTMLButtonElement[],
  opens: boolean
): HTMLLIElement {
  const li = h('li', { class: `odh-row odh-row-${kind}`, title });
  for (const [k, v] of Object.entries(data)) {
    li.dataset[k] = v;
  }
  const nameEl = h(
    opens ? 'button' : 'span',
    { class: 'odh-row-name' + (opens ? ' odh-link' : '') },
    name
  );
  if (opens) {
    nameEl.dataset.action = 'open';
    nameEl.setAttribute('type', 'button');
  }
  li.append(
    icon.element({ tag: 'span', className: 'odh-row-icon' }),
    nameEl,
    h('span', { class: 'odh-row-detail' }, detail),
    h('span', { class: 'odh-row-actions' }, ...actions)
  );
  return li;
}

export function bucketRow(b: IBucket, icons: IRowIcons): HTMLLIElement {
  const created = b.created ? `\ncreated ${new Date(b.created).toLocaleString()}` : '';
  return row(
    'bucket',
    { bucket: b.name },
    icons.bucket,
    b.name,
    `${b.path || `s3://${b.name}/`}${created}`,
    '',
    [
      iconButton(icons.copy, 'Copy s3:// path', { 'data-action': 'copy' }),
      iconButton(icons.open, 'Open bucket', { 'data-action': 'open' })
    ],
    true
  );
}

export function folderRow(
  bucket: string,
  prefix: string,
  f: IFolder,
  icons: IRowIcons
): HTMLLIElement {
  const rel = f.prefix.startsWith(prefix) ? f.prefix.slice(prefix.length) : f.prefix;
  const name = f.name || rel.replace(/\/$/, '') || '(empty name)';
  return row(
    'folder',
    { prefix: f.prefix, rowBucket: bucket },
    icons.folder,
    name,
    f.path || `s3://${bucket}/${f.prefix}`,
    '',
    [
      iconButton(icons.copy, 'Copy s3:// path', { 'data-action': 'copy' }),
      iconButton(icons.remove, 'Delete folder and its contents', { 'data-action': 'delete' }),
      iconButton(icons.open, 'Open folder', { 'data-action': 'open' })
    ],
    true
  );
}

export function objectRow(
  bucket: string,
  prefix: string,
  o: IObject,
  icons: IRowIcons
): HTMLLIElement {
  const rel = o.key.startsWith(prefix) ? o.key.slice(prefix.length) : o.key;
  const name = o.name || rel || o.key;
  const modified = o.last_modified
    ? `\nmodified ${new Date(o.last_modified).toLocaleString()}`
    : '';
  return row(
    'object',
    { key: o.key, rowBucket: bucket },
    icons.file,
    name,
    `${o.path || `s3://${bucket}/${o.key}`}\n${formatBytes(o.size)}${modified}`,
    formatBytes(o.size),
    [
      iconButton(icons.download, 'Download', { 'data-action': 'download' }),
      iconButton(icons.copy, 'Copy s3:// path', { 'data-action': 'copy' }),
      iconButton(icons.snippet, 'Insert code snippet into the notebook', {
        'data-action': 'snippet'
      }),
      iconButton(icons.remove, 'Delete', { 'data-action': 'delete' })
    ],
    false
  );
}

/**
 * Breadcrumb buttons `Buckets / bucket / a / b` for a location, each calling
 * `navigate(bucket, prefix)`; the last one is marked `odh-crumb-current`.
 */
export function breadcrumbs(
  bucket: string | null,
  prefix: string,
  navigate: (bucket: string | null, prefix: string) => void
): HTMLElement[] {
  const crumb = (label: string, b: string | null, p: string): HTMLElement => {
    const el = h('button', { class: 'odh-crumb odh-link', type: 'button', title: b === null ? 'All buckets' : `s3://${b}/${p}` }, label);
    el.dataset.crumbPrefix = p;
    el.addEventListener('click', () => navigate(b, p));
    return el;
  };
  const parts: HTMLElement[] = [crumb('Buckets', null, '')];
  if (bucket !== null) {
    parts.push(crumb(bucket, bucket, ''));
    let acc = '';
    for (const segment of prefix.split('/').slice(0, -1)) {
      acc += segment + '/';
      parts.push(crumb(segment || '(empty)', bucket, acc));
    }
  }
  parts[parts.length - 1].classList.add('odh-crumb-current');
  const out: HTMLElement[] = [];
  parts.forEach((p, i) => {
    if (i) {
      out.push(h('span', { class: 'odh-crumb-sep' }, '/'));
    }
    out.push(p);
  });
  return out;
}

/** The panel's error line (`.odh-error`, dismissible, stays) and status line (`.odh-status`, fades). */
export class Messages {
  readonly error: HTMLElement;
  readonly status = h('div', { class: 'odh-status', 'aria-live': 'polite' });

  constructor() {
    const dismiss = h('button', { class: 'odh-error-dismiss', type: 'button', title: 'Dismiss' }, '×');
    dismiss.addEventListener('click', () => this.clearError());
    this.error = h('div', { class: 'odh-error', role: 'alert' }, this._errorText, dismiss);
    this.error.hidden = true;
  }

  showError(message: string): void {
    this._errorText.textContent = message;
    this.error.hidden = false;
  }

  clearError(): void {
    this.error.hidden = true;
    this._errorText.textContent = '';
  }

  showStatus(message: string): void {
    this.status.textContent = message;
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => (this.status.textContent = ''), 5000);
  }

  private _errorText = h('span', { class: 'odh-error-text' });
  private _timer = 0;
}
