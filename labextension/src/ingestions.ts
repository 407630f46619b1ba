/**
 * The left-sidebar Ingestions panel: the user's Kafka ingestions with state, records, rates, lag and
 * the last object written (click it to open it), pause/resume/stop/delete; refreshed while visible.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { addIcon, downloadIcon, refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { downloadUrl } from './api';
import { stateBadge } from './deployView';
import { h, iconButton, Messages } from './dom';
import { PollingPanel } from './pollingPanel';
import { errorMessage } from './handler';
import { ingestIcon } from './icons';
import {
  deleteIngestion,
  enabledActions,
  IIngestion,
  IngestAction,
  ingestionAction,
  lagText,
  listIngestions,
  updateIngestion
} from './ingestApi';
import { askIngestionChanges } from './ingestDialog';
import { formatBytes } from './units';

/** Refresh period while the panel is visible. */
const REFRESH_MS = 3000;
/** How much of an object the viewer shows. */
const PREVIEW_BYTES = 64 * 1024;

function num(n: number): string {
  return (n ?? 0).toLocaleString('en-US');
}

function stat(name: string, label: string, value: string, title = ''): HTMLElement {
  return h('div', { class: 'odh-field', 'data-stat': name, title }, h('span', { class: 'odh-field-label' }, label), h('span', { class: 'odh-field-value' }, value));
}

export function ingestionRow(i: IIngestion): HTMLLIElement {
  const li = h('li', { class: 'odh-ingestion', 'data-name': i.name, 'data-state': i.state, 'data-records': String(i.records ?? 0) });
  const enabled = enabledActions(i.state);
  const button = (action: IngestAction | 'delete' | 'settings', label: string, title: string, on: boolean): HTMLButtonElement => {
    const b = h('button', { class: 'odh-button', type: 'button', 'data-action': action, title }, label);
    b.disabled = !on;
    return b;
  };
  const last = i.last_object
    ? h('button', { class: 'odh-link odh-ingestion-last-object', type: 'button', 'data-action': 'open-last', title: `Open s3://${i.bucket}/${i.last_object}` }, i.last_object.split('/').pop() ?? i.last_object)
    : h('span', { class: 'odh-ingestion-last-object odh-empty' }, 'none yet');
  li.append(
    h('div', { class: 'odh-deployment-head' }, h('span', { class: 'odh-deployment-name', title: `${i.name} (owner ${i.owner})` }, i.name), stateBadge(i.state)),
    h('div', { class: 'odh-deployment-uri', title: `${i.topic} → s3://${i.bucket}/${i.prefix} (${i.format})` }, `${i.topic} → s3://${i.bucket}/${i.prefix} · ${i.format}`),
    stat('records', 'Records', `${num(i.records)} in ${num(i.objects)} objects · ${num(Math.round(i.records_per_second ?? 0))}/s`),
    stat('bytes', 'Bytes', `${formatBytes(i.bytes ?? 0)} · ${formatBytes(i.bytes_per_second ?? 0)}/s`),
    stat('lag', 'Lag', `${num(i.lag)} (${lagText(i.partitions)})`, 'Records in the topic not yet in the bucket, per partition'),
    h('div', { class: 'odh-field', 'data-stat': 'last-object' }, h('span', { class: 'odh-field-label' }, 'Last object'), h('span', { class: 'odh-field-value' }, last)),
    i.hint ? h('div', { class: 'odh-ingestion-hint' }, i.hint) : '',
    i.last_error ? h('div', { class: 'odh-deployment-error-line odh-ingestion-error', title: i.last_error }, i.last_error) : '',
    h(
      'div',
      { class: 'odh-deployment-actions' },
      button('pause', 'Pause', 'Pause: the worker writes and commits what it holds, then waits', enabled.pause),
      button('resume', 'Resume', 'Go on from the last committed offsets', enabled.resume),
      button('stop', 'Stop', 'Stop the worker (resume later, nothing is lost)', enabled.stop),
      button('settings', 'Settings…', 'Change the prefix, format or flush rule while it runs (nothing lost or doubled)', true),
      button('delete', 'Delete', 'Delete the ingestion (its objects stay in the bucket)', true)
    )
  );
  return li;
}

/** A main-area view of one object: the start of its text (JSON lines) or, for Parquet, a download. */
export class IngestedObjectView extends Widget {
  constructor(bucket: string, key: string) {
    super();
    this.id = `odh-ingested-object-${Date.now()}`;
    this.addClass('odh-ingested-object');
    this.title.label = key.split('/').pop() ?? key;
    this.title.caption = `s3://${bucket}/${key}`;
    this.title.icon = ingestIcon;
    this.title.closable = true;
    const url = downloadUrl(bucket, key);
    this._content = h('pre', { class: 'odh-pre odh-ingested-object-content', id: 'odh-ingested-object-content' }, 'Loading…');
    this.node.append(
      h('div', { class: 'odh-ingested-object-head' }, h('code', { class: 'odh-ingested-object-path' }, `s3://${bucket}/${key}`), h('a', { class: 'odh-button', href: url, download: this.title.label, title: 'Download' }, downloadIcon.element({ tag: 'span' }), ' Download')),
      this._content
    );
    void this._load(url, key);
  }

  private async _load(url: string, key: string): Promise<void> {
    try {
      if (key.endsWith('.parquet')) {
        this._content.textContent = 'A Parquet file: download it, or read it in a notebook with ingestion.read() or pandas.read_parquet.';
        this.node.dataset.loaded = 'parquet';
        return;
      }
      const response = await fetch(url, { credentials: 'same-origin' });
      if (!response.ok || !response.body) {
        throw new Error(`the object could not be read (${response.status} ${response.statusText})`);
      }
      // Read only the start of a large object.
      const reader = response.body.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !value) {
          break;
        }
        chunks.push(value);
        size += value.length;
        if (size >= PREVIEW_BYTES) {
          void reader.cancel();
          break;
        }
      }
      const bytes = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.length;
      }
      const text = new TextDecoder().decode(bytes.slice(0, PREVIEW_BYTES));
      this._content.textContent =
        size >= PREVIEW_BYTES ? `${text}\n… (the first ${formatBytes(PREVIEW_BYTES)})` : text;
      this.node.dataset.loaded = 'text';
    } catch (error) {
      this._content.textContent = errorMessage(error);
      this.node.dataset.loaded = 'error';
    }
  }

  private _content: HTMLElement;
}

export interface IIngestionsPanelOptions {
  /** Open the "New ingestion" dialog. */
  create: () => Promise<void>;
  /** Open an object in the main area. */
  open: (bucket: string, key: string) => void;
}

export class IngestionsPanel extends PollingPanel {
  constructor(options: IIngestionsPanelOptions) {
    super(REFRESH_MS, { name: 'ingestions', title: 'Ingestions' });
    this._options = options;
    this.id = 'odh-ingestions-panel';
    this.addClass('odh-Panel');
    this.addClass('odh-IngestionsPanel');
    this.title.icon = ingestIcon;
    this.title.caption = 'Kafka ingestions';
    const refresh = iconButton(refreshIcon, 'Refresh', { id: 'odh-ingestions-refresh', 'data-action': 'refresh' });
    refresh.addEventListener('click', () => {
      this._messages.clearError();
      void this.refresh(true);
    });
    const create = iconButton(addIcon, 'New ingestion: stream a Kafka topic into a bucket', { id: 'odh-ingestions-new', 'data-action': 'new' }, 'New ingestion');
    create.addEventListener('click', () => void this._options.create());
    this._list = h('ul', { class: 'odh-deployments odh-ingestions' });
    this._list.addEventListener('click', e => this._onClick(e));
    this._empty = h('div', { class: 'odh-empty' });
    this.node.append(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, 'Ingestions'), h('span', { class: 'odh-loading-indicator' }, 'Loading…')),
      h('div', { class: 'odh-toolbar' }, create, refresh),
      this._messages.error,
      this._messages.status,
      h('div', { class: 'odh-listing' }, this._list, this._empty)
    );
  }

  get ingestions(): IIngestion[] {
    return this._ingestions;
  }

  async refresh(force = false): Promise<void> {
    const gen = ++this._gen;
    this.node.classList.add('odh-loading');
    try {
      const ingestions = await listIngestions();
      if (gen !== this._gen) {
        return;
      }
      ingestions.sort((a, b) => a.name.localeCompare(b.name));
      const json = JSON.stringify(ingestions);
      this._ingestions = ingestions;
      this._loaded = true;
      if (force || json !== this._json) {
        this._json = json;
        this._list.textContent = '';
        this._list.append(...ingestions.map(ingestionRow));
      }
    } catch (error) {
      if (gen === this._gen) {
        this._messages.showError(errorMessage(error));
      }
    } finally {
      if (gen === this._gen) {
        this.node.classList.remove('odh-loading');
        this._empty.textContent =
          this._loaded && !this._ingestions.length ? 'No ingestions yet: "New ingestion" streams a Kafka topic into one of your buckets.' : '';
      }
    }
  }

  showStatus(message: string): void {
    this._messages.showStatus(message);
  }

  private _onClick(event: MouseEvent): void {
    const el = (event.target as HTMLElement).closest<HTMLElement>('[data-action]');
    const name = el?.closest<HTMLElement>('.odh-ingestion')?.dataset.name;
    if (!el || !name || (el as HTMLButtonElement).disabled) {
      return;
    }
    event.stopPropagation();
    const action = el.dataset.action;
    const ing = this._ingestions.find(i => i.name === name);
    if (action === 'open-last') {
      if (ing?.last_object) {
        this._options.open(ing.bucket, ing.last_object);
      }
    } else if (action === 'delete') {
      void this._delete(name);
    } else if (action === 'settings' && ing) {
      void this._run(async () => {
        const changes = await askIngestionChanges(ing);
        if (changes) {
          await updateIngestion(name, changes);
          this.showStatus(`${name}: changed ${Object.keys(changes).join(', ')}`);
        }
      });
    } else if (action === 'pause' || action === 'resume' || action === 'stop') {
      void this._run(async () => {
        const i = await ingestionAction(name, action);
        this.showStatus(`${name}: ${i.desired}`);
      });
    }
  }

  private async _delete(name: string): Promise<void> {
    const result = await showDialog({
      title: 'Delete ingestion',
      body: `Delete the ingestion ${name}? Its worker stops and its offsets are forgotten; the objects it wrote stay in the bucket.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (result.button.accept) {
      await this._run(async () => {
        await deleteIngestion(name);
        this.showStatus(`Deleted ${name}`);
      });
    }
  }

  private async _run(fn: () => Promise<void>): Promise<void> {
    this._messages.clearError();
    try {
      await fn();
    } catch (error) {
      this._messages.showError(errorMessage(error));
    }
    await this.refresh(true);
  }

  private _options: IIngestionsPanelOptions;
  private _ingestions: IIngestion[] = [];
  private _json = '';
  private _loaded = false;
  private _gen = 0;
  private _messages = new Messages();
  private _list: HTMLUListElement;
  private _empty: HTMLElement;
}
