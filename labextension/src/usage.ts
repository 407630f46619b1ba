/**
 * The left-sidebar Usage panel: the user's CPU hours, memory, stored bytes against their quota (a bar), and
 * their running deployments, ingestions and Spark workers with their limits (and where each limit comes
 * from: a group, or the platform default); refreshed while visible, and by its Refresh button.
 */
import { refreshIcon } from '@jupyterlab/ui-components';

import { h, iconButton, Messages } from './dom';
import { errorMessage, requestAPI } from './handler';
import { usageIcon } from './icons';
import { PollingPanel } from './pollingPanel';
import { formatBytes } from './units';

/** Refresh period while the panel is visible (the platform's figures change every few seconds). */
const REFRESH_MS = 10000;

export interface ICount {
  count: number;
  limit: number | null;
  source: string;
}

export interface IUsage {
  user: string;
  cpu_hours: number;
  memory_bytes: number;
  storage_bytes: number;
  storage_known?: boolean;
  storage_quota_bytes: number | null;
  storage_quota_source?: string;
  deployments: ICount;
  ingestions: ICount;
  spark_workers: ICount;
  as_of: number;
}

export function getUsage(): Promise<IUsage> {
  return requestAPI<IUsage>('usage');
}

/** `1.25` CPU hours with at most two decimals (`< 0.01` for a little). */
export function hoursText(hours: number): string {
  if (hours > 0 && hours < 0.01) {
    return '< 0.01';
  }
  return (Math.round(hours * 100) / 100).toLocaleString('en-US');
}

/** Stored bytes of the quota as a percentage (0-100), or null without a quota. */
export function quotaPercent(used: number, quota: number | null): number | null {
  if (!quota) {
    return null;
  }
  return Math.min(100, Math.round((used / quota) * 1000) / 10);
}

function row(name: string, label: string, value: string, title = ''): HTMLElement {
  return h('div', { class: 'odh-field', 'data-usage': name, title }, h('span', { class: 'odh-field-label' }, label), h('span', { class: 'odh-field-value' }, value));
}

function countRow(name: string, label: string, c: ICount): HTMLElement {
  const limit = c.limit === null ? 'no limit' : `of ${c.limit} · ${c.source}`;
  const el = row(name, label, `${c.count} ${limit}`, c.limit === null ? '' : `Limit from ${c.source}`);
  el.dataset.full = String(c.limit !== null && c.count >= c.limit);
  return el;
}

export class UsagePanel extends PollingPanel {
  constructor() {
    super(REFRESH_MS);
    this.id = 'odh-usage-panel';
    this.addClass('odh-Panel');
    this.addClass('odh-UsagePanel');
    this.title.icon = usageIcon;
    this.title.caption = 'Your usage and limits';
    const refresh = iconButton(refreshIcon, 'Refresh', { id: 'odh-usage-refresh', 'data-action': 'refresh' }, 'Refresh');
    refresh.addEventListener('click', () => {
      this._messages.clearError();
      void this.refresh();
    });
    this.node.append(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, 'Usage'), h('span', { class: 'odh-loading-indicator' }, 'Loading…')),
      h('div', { class: 'odh-toolbar' }, refresh),
      this._messages.error,
      this._body
    );
  }

  get usage(): IUsage | null {
    return this._usage;
  }

  async refresh(): Promise<void> {
    const gen = ++this._gen;
    this.node.classList.add('odh-loading');
    try {
      const usage = await getUsage();
      if (gen === this._gen) {
        this._usage = usage;
        this._render(usage);
      }
    } catch (error) {
      if (gen === this._gen) {
        this._messages.showError(errorMessage(error));
      }
    } finally {
      if (gen === this._gen) {
        this.node.classList.remove('odh-loading');
      }
    }
  }

  private _render(u: IUsage): void {
    const percent = quotaPercent(u.storage_bytes, u.storage_quota_bytes);
    const stored = u.storage_known === false ? 'not read yet' : formatBytes(u.storage_bytes);
    const quota = u.storage_quota_bytes ? ` of ${formatBytes(u.storage_quota_bytes)}` : ' (no quota)';
    const extra: HTMLElement[] = [];
    const storage = row('storage', 'Storage', `${stored}${quota}`, u.storage_quota_source ? `Quota from ${u.storage_quota_source}` : '');
    if (percent !== null) {
      const bar = h('div', { class: 'odh-usage-bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(percent), title: `${percent}% of your quota` });
      const fill = h('div', { class: 'odh-usage-bar-fill' });
      fill.style.width = `${percent}%`;
      bar.dataset.level = percent >= 90 ? 'full' : percent >= 75 ? 'high' : 'ok';
      bar.append(fill);
      extra.push(bar, h('div', { class: 'odh-usage-source', 'data-usage': 'storage-percent' }, `${percent}% used · quota from ${u.storage_quota_source ?? 'the platform'}`));
    }
    const asOf = new Date(u.as_of * 1000);
    this._body.textContent = '';
    this._body.append(
      h('div', { class: 'odh-subtitle' }, 'Compute'),
      row('cpu', 'CPU', `${hoursText(u.cpu_hours)} hours`, 'CPU time of your servers, kernels, Spark clusters and ingestions in all'),
      row('memory', 'Memory', formatBytes(u.memory_bytes), 'Memory your processes use now'),
      h('div', { class: 'odh-subtitle' }, 'Storage'),
      storage,
      ...extra,
      h('div', { class: 'odh-subtitle' }, 'Running'),
      countRow('deployments', 'Deployments', u.deployments),
      countRow('ingestions', 'Ingestions', u.ingestions),
      countRow('spark-workers', 'Spark workers', u.spark_workers),
      h('div', { class: 'odh-usage-as-of' }, `As of ${asOf.toLocaleTimeString()}`)
    );
  }

  private _usage: IUsage | null = null;
  private _gen = 0;
  private _messages = new Messages();
  private _body = h('div', { class: 'odh-usage-body' });
}
