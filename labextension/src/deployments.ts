/** The left-sidebar Deployments panel: the user's model deployments, refreshed while visible. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';

import { deleteDeployment, getDeployment, IDeployment, listDeployments, predict, rollbackDeployment, rotateKey, setPublic } from './deployApi';
import { deploymentRow, ITestResult } from './deployRow';
import { predictionText } from './deployView';
import { h, iconButton, Messages } from './dom';
import { PollingPanel } from './pollingPanel';
import { errorMessage } from './handler';
import { deploymentsIcon } from './icons';

/** Refresh period while the panel is visible. */
const REFRESH_MS = 5000;

export class DeploymentsPanel extends PollingPanel {
  constructor() {
    super(REFRESH_MS, { name: 'deployments', title: 'Deployments' });
    this.id = 'odh-deployments-panel';
    this.addClass('odh-Panel');
    this.addClass('odh-DeploymentsPanel');
    this.title.icon = deploymentsIcon;
    this.title.caption = 'Model deployments';
    const refresh = iconButton(refreshIcon, 'Refresh', { id: 'odh-deployments-refresh', 'data-action': 'refresh' });
    refresh.addEventListener('click', () => {
      this._messages.clearError();
      void this.refresh(true);
    });
    this._list = h('ul', { class: 'odh-deployments' });
    this._list.addEventListener('click', e => this._onClick(e));
    this._empty = h('div', { class: 'odh-empty' });
    this.node.append(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, 'Deployments'), h('span', { class: 'odh-loading-indicator' }, 'Loading…')),
      h('div', { class: 'odh-toolbar' }, refresh),
      this._messages.error,
      this._messages.status,
      h('div', { class: 'odh-listing' }, this._list, this._empty)
    );
  }

  /** The last listing (empty before the first one). */
  get deployments(): IDeployment[] {
    return this._deployments;
  }

  /** Fetch the listing; `force` redraws even when nothing changed. */
  async refresh(force = false): Promise<void> {
    const gen = ++this._gen;
    this.node.classList.add('odh-loading');
    try {
      const deployments = await listDeployments();
      if (gen !== this._gen) {
        return;
      }
      deployments.sort((a, b) => a.name.localeCompare(b.name));
      const json = JSON.stringify(deployments);
      this._deployments = deployments;
      this._loaded = true;
      // Redrawing only on change keeps clicks and focus working between refreshes.
      if (force || json !== this._json) {
        this._json = json;
        this._render();
      }
    } catch (error) {
      if (gen === this._gen) {
        this._messages.showError(errorMessage(error));
      }
    } finally {
      if (gen === this._gen) {
        this.node.classList.remove('odh-loading');
        this._renderEmpty();
      }
    }
  }

  showError(message: string): void {
    this._messages.showError(message);
  }

  showStatus(message: string): void {
    this._messages.showStatus(message);
  }

  private _render(): void {
    const copied = (text: string): void => this._messages.showStatus(`Copied ${text}`);
    const names = new Set(this._deployments.map(d => d.name));
    for (const name of [...this._expanded, ...this._tests.keys(), ...this._shown.keys()]) {
      if (!names.has(name)) {
        this._expanded.delete(name);
        this._tests.delete(name);
        this._shown.delete(name);
      }
    }
    this._list.textContent = '';
    this._list.append(...this._deployments.map(d => deploymentRow(d, this._expanded.has(d.name), this._tests.get(d.name), copied, this._shown.get(d.name))));
  }

  private _renderEmpty(): void {
    this._empty.textContent =
      this._loaded && !this._deployments.length
        ? 'No deployments yet: right-click a .joblib/.pkl file or an MLflow model folder in the file browser and choose "Deploy model…".'
        : '';
  }

  private _onClick(event: MouseEvent): void {
    const el = (event.target as HTMLElement).closest<HTMLElement>('[data-action]');
    const row = el?.closest<HTMLElement>('.odh-deployment');
    const name = row?.dataset.name;
    if (!el || !name || (el as HTMLButtonElement).disabled) {
      return;
    }
    event.stopPropagation();
    switch (el.dataset.action) {
      case 'toggle':
        if (!this._expanded.delete(name)) {
          this._expanded.add(name);
        }
        this._render();
        break;
      case 'rollback':
        void this._run(async () => {
          const d = await rollbackDeployment(name);
          this.showStatus(`Rolling ${name} back (now v${d.version})`);
        });
        break;
      case 'delete':
        void this._delete(name);
        break;
      case 'test':
        void this._test(name);
        break;
      case 'show-key':
        void this._run(async () => {
          this._shown.set(name, await getDeployment(name));
        });
        break;
      case 'rotate-key':
        void this._run(async () => {
          this._shown.set(name, await rotateKey(name));
          this.showStatus(`New key for ${name}: the old one no longer works`);
        });
        break;
      case 'toggle-public': {
        const current = this._deployments.find(d => d.name === name);
        void this._run(async () => {
          const d = await setPublic(name, !current?.public);
          this._shown.set(name, d);
          this.showStatus(d.public ? `${name} is public: anyone may call it` : `${name} needs its key or your token again`);
        });
        break;
      }
    }
  }

  private async _delete(name: string): Promise<void> {
    const result = await showDialog({
      title: 'Delete deployment',
      body: `Delete the deployment ${name} and all its versions? Its endpoint stops answering. This cannot be undone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    await this._run(async () => {
      await deleteDeployment(name);
      this.showStatus(`Deleted ${name}`);
    });
  }

  private async _test(name: string): Promise<void> {
    this._tests.set(name, { state: 'running', text: 'Predicting…' });
    this._render();
    let result: ITestResult;
    try {
      result = { state: 'done', text: predictionText(await predict(name)) };
    } catch (error) {
      result = { state: 'failed', text: errorMessage(error) };
    }
    this._tests.set(name, result);
    this._render();
  }

  /** Run an action, show its error, then refresh the listing. */
  private async _run(fn: () => Promise<void>): Promise<void> {
    this._messages.clearError();
    try {
      await fn();
    } catch (error) {
      this._messages.showError(errorMessage(error));
    }
    await this.refresh(true);
  }

  private _deployments: IDeployment[] = [];
  private _json = '';
  private _loaded = false;
  private _gen = 0;
  private _expanded = new Set<string>();
  private _tests = new Map<string, ITestResult>();
  /** Answers about one deployment (they hold its key), shown in its row once asked for. */
  private _shown = new Map<string, IDeployment>();
  private _messages = new Messages();
  private _list: HTMLUListElement;
  private _empty: HTMLElement;
}
