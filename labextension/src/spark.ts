/**
 * The user's Spark cluster: its REST API (`{baseUrl}odh/api/spark...`), a polled model and the
 * status bar item `Spark: 2/2 workers` (hidden while the server answers `enabled: false`).
 */
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { errorMessage, errorStatus, requestAPI } from './handler';
import { sparkIcon } from './icons';

export interface ISparkApplication {
  id: string;
  name: string;
  state: string;
  cores: number;
}

export interface ISparkStatus {
  enabled: boolean;
  /** With enabled false: why (the server's profile leaves Spark out, and which profile has it). */
  reason?: string;
  state?: 'running' | 'starting' | 'stopped';
  master_url?: string;
  ui_url?: string;
  workers_alive?: number;
  workers_requested?: number;
  max_workers?: number;
  cores?: number;
  cores_used?: number;
  memory_mb?: number;
  memory_used_mb?: number;
  applications?: ISparkApplication[];
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

export function getSpark(): Promise<ISparkStatus> {
  return requestAPI<ISparkStatus>('spark');
}

export function scaleSpark(workers: number): Promise<ISparkStatus> {
  return requestAPI<ISparkStatus>('spark/scale', { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ workers }) });
}

export function restartSpark(): Promise<ISparkStatus> {
  return requestAPI<ISparkStatus>('spark/restart', { method: 'POST', headers: JSON_HEADERS, body: '{}' });
}

/** Poll period; after a 404 (a server without the Spark API) the model asks far less often. */
const POLL_MS = 5000;
const ABSENT_POLL_MS = 60000;

/** The last known Spark status, refreshed every 5 s once started. */
export class SparkModel {
  /** The last status (null before the first answer or after an error). */
  get status(): ISparkStatus | null {
    return this._status;
  }

  /** The last refresh's error message, or null. */
  get error(): string | null {
    return this._error;
  }

  get enabled(): boolean {
    return !!this._status?.enabled;
  }

  /** Emitted after every refresh and every status set by an action. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Start polling (idempotent). */
  start(): void {
    if (!this._started) {
      this._started = true;
      void this.refresh();
    }
  }

  async refresh(): Promise<void> {
    window.clearTimeout(this._timer);
    let delay = POLL_MS;
    try {
      this.set(await getSpark());
    } catch (error) {
      if (errorStatus(error) === 404) {
        delay = ABSENT_POLL_MS;
        this._status = { enabled: false };
      }
      this._error = errorMessage(error);
      this._changed.emit();
    }
    if (this._status?.enabled === false && this._status.reason) {
      return; // left out of this server's profile: it will not change while the server runs
    }
    if (this._started) {
      window.clearTimeout(this._timer);
      this._timer = window.setTimeout(() => void this.refresh(), delay);
    }
  }

  /** Take a status answered by an action (scale, restart). */
  set(status: ISparkStatus): void {
    this._status = status;
    this._error = null;
    this._changed.emit();
  }

  private _status: ISparkStatus | null = null;
  private _error: string | null = null;
  private _started = false;
  private _timer = 0;
  private _changed = new Signal<this, void>(this);
}

/** `2/2 workers` */
export function workersText(s: ISparkStatus): string {
  return `${s.workers_alive ?? 0}/${s.workers_requested ?? 0} workers`;
}

/** The status bar item; `isActive` (shown) while Spark is enabled. */
export class SparkStatusItem extends Widget {
  constructor(readonly model: SparkModel, onClick: () => void) {
    super({ node: h('button', { type: 'button', class: 'odh-spark-status' }) });
    this.id = 'odh-spark-status';
    this.node.append(sparkIcon.element({ tag: 'span', className: 'odh-spark-status-icon' }), this._text);
    this.node.addEventListener('click', onClick);
    model.changed.connect(this._update, this);
    this._update();
  }

  /** Emitted when the item should be shown or hidden (`IStatusBar.IItem.activeStateChanged`). */
  get activeStateChanged(): ISignal<this, void> {
    return this._activeStateChanged;
  }

  get active(): boolean {
    return this._active;
  }

  private _update(): void {
    const { status, error } = this.model;
    const active = !!status?.enabled;
    if (status?.enabled) {
      const healthy = error === null && status.state === 'running' && (status.workers_alive ?? 0) >= (status.workers_requested ?? 0);
      this._text.textContent = `Spark: ${workersText(status)}`;
      this.node.dataset.state = error === null ? status.state ?? '' : 'error';
      this.node.classList.toggle('odh-spark-degraded', !healthy);
      this.node.title = error
        ? `Spark: ${error}`
        : `Spark cluster ${status.state ?? ''}: ${workersText(status)} (max ${status.max_workers ?? '?'}), ` +
          `${status.cores_used ?? 0}/${status.cores ?? 0} cores in use. Click for details.`;
    }
    if (active !== this._active) {
      this._active = active;
      this._activeStateChanged.emit();
    }
  }

  private _text = h('span', { class: 'odh-spark-status-text' }, 'Spark');
  private _active = false;
  private _activeStateChanged = new Signal<this, void>(this);
}
