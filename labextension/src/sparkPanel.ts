/** The Spark panel (a main-area tab): cluster details, applications, scale and restart. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { field, stateBadge } from './deployView';
import { h, iconButton } from './dom';
import { FeatureGate } from './features';
import { errorMessage } from './handler';
import { sparkIcon } from './icons';
import { ISparkStatus, restartSpark, scaleSpark, SparkModel } from './spark';
import { formatBytes } from './units';

/** A size the Spark master reports in MiB. */
function mb(n: number | undefined): string {
  return formatBytes((n ?? 0) * 1024 * 1024);
}

export class SparkPanel extends Widget {
  constructor(readonly model: SparkModel) {
    super();
    this.id = 'odh-spark-panel';
    this.addClass('odh-Panel');
    this.addClass('odh-SparkPanel');
    this.title.label = 'Spark';
    this.title.caption = 'Spark cluster';
    this.title.icon = sparkIcon;
    this.title.closable = true;

    const refresh = iconButton(refreshIcon, 'Refresh', { 'data-action': 'refresh' });
    refresh.addEventListener('click', () => void this.model.refresh());
    this._workers = h('input', { id: 'odh-spark-workers', class: 'jp-mod-styled odh-spark-workers', type: 'number', min: '0', step: '1', 'aria-label': 'Workers' });
    this._workers.addEventListener('input', () => (this._dirty = true));
    this._workers.addEventListener('keydown', e => e.key === 'Enter' && void this._scale());
    this._scaleButton = h('button', { class: 'jp-Button jp-mod-styled jp-mod-accept odh-small-button', type: 'button', 'data-action': 'scale' }, 'Scale');
    this._scaleButton.addEventListener('click', () => void this._scale());
    this._restartButton = h('button', { class: 'jp-Button jp-mod-styled jp-mod-warn odh-small-button', type: 'button', 'data-action': 'restart' }, 'Restart cluster');
    this._restartButton.addEventListener('click', () => void this._restart());
    this._error = h('div', { id: 'odh-spark-error', class: 'odh-error', role: 'alert' });
    this._error.hidden = true;
    this._uiLink = h('a', { id: 'odh-spark-ui-link', class: 'odh-url-link', target: '_blank', rel: 'noopener noreferrer' }, 'Open the Spark UI');

    this.node.append(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, 'Spark cluster'), this._badge, refresh),
      this._error,
      this._disabled,
      h(
        'div',
        { class: 'odh-spark-body' },
        this._fields,
        h('div', { class: 'odh-field' }, h('span', { class: 'odh-field-label' }, 'Spark UI'), h('span', { class: 'odh-field-value' }, this._uiLink)),
        h('div', { class: 'odh-spark-scale' }, h('label', { for: 'odh-spark-workers' }, 'Workers'), this._workers, this._max, this._scaleButton, this._restartButton),
        h('div', { class: 'odh-subtitle' }, 'Running applications'),
        this._apps
      )
    );
    model.changed.connect(this._render, this);
    this._render();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._show();
  }

  /** Whether this server has Spark (when not, the panel shows why instead of the cluster). */
  readonly gate = new FeatureGate(this.node, 'spark', 'Spark cluster');

  private async _show(): Promise<void> {
    if (await this.gate.isOn()) {
      this.model.start();
      void this.model.refresh();
    }
  }

  /** An action's error (kept until the next action), else the last refresh's. */
  private _showError(message: string | null): void {
    this._actionError = message;
    const shown = message ?? this.model.error;
    this._error.textContent = shown ?? '';
    this._error.hidden = !shown;
  }

  private async _scale(): Promise<void> {
    const max = this.model.status?.max_workers ?? 0;
    const workers = Number(this._workers.value);
    if (!Number.isInteger(workers) || workers < 0 || workers > max) {
      this._showError(`Choose a whole number of workers from 0 to ${max}.`);
      return;
    }
    await this._act(async () => {
      this.model.set(await scaleSpark(workers));
      this._dirty = false;
      this._render();
    });
  }

  private async _restart(): Promise<void> {
    const result = await showDialog({
      title: 'Restart Spark cluster',
      body: 'Restart the Spark master and all workers? Running applications are stopped.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Restart' })]
    });
    if (result.button.accept) {
      await this._act(async () => this.model.set(await restartSpark()));
    }
  }

  /** Run an action with the buttons disabled; its error stays until the next action. */
  private async _act(fn: () => Promise<void>): Promise<void> {
    this._busy = true;
    this._showError(null);
    this._render();
    try {
      await fn();
    } catch (error) {
      this._showError(errorMessage(error));
    } finally {
      this._busy = false;
      this._render();
    }
  }

  private _render(): void {
    const s: ISparkStatus | null = this.model.status;
    this._showError(this._actionError);
    const enabled = !!s?.enabled;
    this.node.dataset.state = s?.state ?? '';
    this._disabled.hidden = enabled || s === null;
    this._disabled.textContent = s?.reason ?? 'Spark is not enabled for this server.';
    (this.node.querySelector('.odh-spark-body') as HTMLElement | null)?.toggleAttribute('hidden', !enabled);
    this._badge.textContent = '';
    if (s?.state) {
      this._badge.append(stateBadge(s.state));
    }
    if (!s || !enabled) {
      return;
    }
    const max = s.max_workers ?? 0;
    this._fields.textContent = '';
    this._fields.append(
      field('Master', h('code', { class: 'odh-spark-master' }, s.master_url ?? '')),
      field('Workers', h('span', { class: 'odh-spark-workers-count' }, `${s.workers_alive ?? 0} alive / ${s.workers_requested ?? 0} requested (max ${max})`)),
      field('Cores', `${s.cores_used ?? 0} used / ${s.cores ?? 0}`),
      field('Memory', `${mb(s.memory_used_mb)} used / ${mb(s.memory_mb)}`)
    );
    if (s.ui_url) {
      this._uiLink.href = s.ui_url;
      this._uiLink.title = s.ui_url;
    } else {
      this._uiLink.removeAttribute('href');
    }
    this._workers.max = String(max);
    if (!this._dirty && document.activeElement !== this._workers) {
      this._workers.value = String(s.workers_requested ?? 0);
    }
    this._max.textContent = `of max ${max}`;
    this._workers.disabled = this._busy;
    this._scaleButton.disabled = this._busy;
    this._restartButton.disabled = this._busy;
    const apps = s.applications ?? [];
    this._apps.textContent = '';
    for (const app of apps) {
      this._apps.append(
        h(
          'li',
          { class: 'odh-spark-app', 'data-id': app.id, 'data-state': app.state, title: app.id },
          h('span', { class: 'odh-spark-app-name' }, app.name),
          stateBadge(app.state),
          h('span', { class: 'odh-spark-app-cores' }, `${app.cores} cores`)
        )
      );
    }
    if (!apps.length) {
      this._apps.append(h('li', { class: 'odh-empty' }, 'No running applications.'));
    }
  }

  private _badge = h('span', { class: 'odh-spark-state' });
  private _disabled = h('div', { class: 'odh-empty odh-spark-disabled' });
  private _fields = h('div', { class: 'odh-spark-fields' });
  private _max = h('span', { class: 'odh-spark-max' });
  private _apps = h('ul', { class: 'odh-spark-apps' });
  private _workers: HTMLInputElement;
  private _scaleButton: HTMLButtonElement;
  private _restartButton: HTMLButtonElement;
  private _error: HTMLElement;
  private _uiLink: HTMLAnchorElement;
  private _actionError: string | null = null;
  private _dirty = false;
  private _busy = false;
}
