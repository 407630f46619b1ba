/** The "New ingestion" dialog: topic, bucket, prefix, format, flush rule, hourly folders; the plan as typed. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import {
  changedSettings,
  DEFAULT_FLUSH_RECORDS,
  DEFAULT_FLUSH_SECONDS,
  defaultName,
  FORMATS,
  IIngestion,
  IIngestSettings,
  IngestChanges,
  IngestFormat,
  listTopics,
  planOf,
  settingsProblem
} from './ingestApi';

export interface IIngestDefaults {
  topic?: string;
  bucket?: string;
}

class IngestBody extends Widget implements Dialog.IBodyWidget<IIngestSettings> {
  /** `existing`: edit that ingestion's settings (topic, bucket and name stay as they are). */
  constructor(defaults: IIngestDefaults, existing?: IIngestion) {
    super();
    this.addClass('odh-ingest-dialog');
    const input = (id: string, value: string, attrs: Record<string, string> = {}): HTMLInputElement => {
      const el = h('input', { id: `odh-ingest-${id}`, class: 'jp-mod-styled', type: 'text', spellcheck: 'false', autocomplete: 'off', ...attrs });
      el.value = value;
      el.addEventListener('input', () => this._check());
      return el;
    };
    this._topic = input('topic', defaults.topic ?? '', { placeholder: 'clicks', list: 'odh-ingest-topics' });
    const topics = h('datalist', { id: 'odh-ingest-topics' });
    listTopics().then(
      found => topics.append(...found.map(t => h('option', { value: t.name }, `${t.partitions} partition${t.partitions === 1 ? '' : 's'}`))),
      () => undefined // suggestions only: the platform says at submit time when a topic does not exist
    );
    this._bucket = input('bucket', defaults.bucket ?? '', { placeholder: 'my-raw-data' });
    this._prefix = input('prefix', '', { placeholder: 'clicks/' });
    this._name = input('name', '', { placeholder: 'from topic and bucket' });
    this._records = input('flush-records', String(DEFAULT_FLUSH_RECORDS), { type: 'number', min: '1', step: '1' });
    this._seconds = input('flush-seconds', String(DEFAULT_FLUSH_SECONDS), { type: 'number', min: '0.1', step: 'any' });
    this._format = h('select', { id: 'odh-ingest-format', class: 'jp-mod-styled' });
    for (const f of FORMATS) {
      this._format.append(h('option', { value: f }, f));
    }
    this._format.addEventListener('change', () => this._check());
    this._hourly = h('input', { id: 'odh-ingest-hourly', type: 'checkbox' });
    this._hourly.addEventListener('change', () => this._check());
    this._problem = h('div', { id: 'odh-ingest-problem', class: 'odh-deploy-name-problem', role: 'alert' });
    this._plan = h('div', { id: 'odh-ingest-plan', class: 'odh-ingest-plan' });
    const row = (label: string, el: HTMLElement): HTMLElement =>
      h('label', { class: 'odh-ingest-row', for: el.id }, h('span', { class: 'odh-field-label' }, label), el);
    if (existing) {
      this._topic.value = existing.topic;
      this._bucket.value = existing.bucket;
      this._name.value = existing.name;
      this._prefix.value = existing.prefix;
      this._records.value = String(existing.flush_records);
      this._seconds.value = String(existing.flush_seconds);
      this._format.value = existing.format;
      this._hourly.checked = existing.partition_by === 'hour';
      for (const fixed of [this._topic, this._bucket, this._name]) {
        fixed.readOnly = true;
        fixed.title = 'Fixed for an existing ingestion';
      }
    }
    this.node.append(
      row('Topic', this._topic),
      topics,
      row('Bucket', this._bucket),
      row('Prefix', this._prefix),
      h(
        'div',
        { class: 'odh-ingest-row' },
        h('label', { class: 'odh-field-label', for: this._format.id }, 'Format'),
        this._format,
        h('label', { class: 'odh-ingest-inline', for: this._hourly.id }, this._hourly, ' folders by hour')
      ),
      h(
        'div',
        { class: 'odh-ingest-row' },
        h('label', { class: 'odh-field-label', for: this._records.id }, 'Close a file at'),
        this._records,
        h('label', { class: 'odh-ingest-inline', for: this._seconds.id }, 'records, or after'),
        this._seconds,
        h('span', { class: 'odh-ingest-inline' }, 'seconds')
      ),
      row('Name', this._name),
      this._problem,
      h('div', { class: 'odh-subtitle' }, 'Plan'),
      this._plan
    );
  }

  getValue(): IIngestSettings {
    const topic = this._topic.value.trim();
    const bucket = this._bucket.value.trim();
    return {
      name: this._name.value.trim() || defaultName(topic, bucket),
      topic,
      bucket,
      prefix: this._prefix.value.trim(),
      format: this._format.value as IngestFormat,
      flush_records: Number(this._records.value),
      flush_seconds: Number(this._seconds.value),
      partition_by: this._hourly.checked ? 'hour' : null
    };
  }

  protected onAfterAttach(): void {
    this._check();
  }

  /** Say what is wrong (and disable Start), or show the plan. */
  private _check(): void {
    const value = this.getValue();
    const problem = settingsProblem(value);
    this._problem.textContent = problem?.message ?? '';
    this._problem.hidden = !problem;
    this._problem.dataset.field = problem?.field ?? '';
    this._name.placeholder = defaultName(value.topic, value.bucket);
    this._plan.textContent = '';
    if (!problem) {
      for (const line of planOf(value)) {
        this._plan.append(h('div', { class: 'odh-field', 'data-plan': line.label.toLowerCase().replace(' ', '-') }, h('span', { class: 'odh-field-label' }, line.label), h('code', { class: 'odh-field-value' }, line.text)));
      }
    }
    const accept = this.node.closest('.jp-Dialog')?.querySelector<HTMLButtonElement>('.jp-mod-accept');
    if (accept) {
      accept.disabled = !!problem;
    }
  }

  private _topic: HTMLInputElement;
  private _bucket: HTMLInputElement;
  private _prefix: HTMLInputElement;
  private _name: HTMLInputElement;
  private _records: HTMLInputElement;
  private _seconds: HTMLInputElement;
  private _format: HTMLSelectElement;
  private _hourly: HTMLInputElement;
  private _problem: HTMLElement;
  private _plan: HTMLElement;
}

/** Ask for a new ingestion's settings; null when cancelled. Throws for settings the platform would refuse. */
export async function askIngestion(defaults: IIngestDefaults = {}): Promise<IIngestSettings | null> {
  const result = await showDialog<IIngestSettings>({
    title: 'New ingestion: stream a Kafka topic into a bucket',
    body: new IngestBody(defaults),
    focusNodeSelector: '#odh-ingest-topic',
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Start ingestion' })]
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  const problem = settingsProblem(result.value);
  if (problem) {
    throw new Error(problem.message);
  }
  return result.value;
}

/** Change a running ingestion's settings; the changed fields only, or null when cancelled or nothing changed.
 * Throws for settings the platform would refuse. */
export async function askIngestionChanges(existing: IIngestion): Promise<IngestChanges | null> {
  const result = await showDialog<IIngestSettings>({
    title: `Settings of ${existing.name}`,
    body: new IngestBody({}, existing),
    focusNodeSelector: '#odh-ingest-flush-records',
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Apply' })]
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  const problem = settingsProblem(result.value);
  if (problem) {
    throw new Error(problem.message);
  }
  const changes = changedSettings(existing, result.value);
  return Object.keys(changes).length ? changes : null;
}
