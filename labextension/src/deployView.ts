/** DOM pieces shared by the deploy progress view and the Deployments panel. */
import { Clipboard } from '@jupyterlab/apputils';
import { copyIcon } from '@jupyterlab/ui-components';

import { IDeployment, IPrediction } from './deployApi';
import { h, iconButton } from './dom';

/** Compact JSON for inputs/outputs (long values are cut). */
export function brief(value: unknown, max = 300): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch (error) {
    text = String(value);
  }
  if (text === undefined) {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `inputs → outputs (12 ms)` */
export function predictionText(p: IPrediction): string {
  const ms = typeof p.elapsed_ms === 'number' ? ` (${Math.round(p.elapsed_ms * 10) / 10} ms)` : '';
  return `${brief(p.inputs)} → ${brief(p.outputs)}${ms}`;
}

/** A locale date-time for an ISO string ('' for none, the string itself if unparsable). */
export function when(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** A state badge: `.odh-badge.odh-state-available` etc. */
export function stateBadge(state: string): HTMLElement {
  return h('span', { class: `odh-badge odh-state-${state.toLowerCase()}`, title: `State: ${state}` }, state);
}

/** `v2 of 3` */
export function versionText(d: IDeployment): string {
  const count = d.versions?.length ?? 0;
  return `v${d.version} of ${Math.max(count, d.version || 0)}`;
}

/** A copy button for `text`; `onCopied` reports it (status line). */
export function copyButton(text: string, title: string, onCopied?: (text: string) => void, attrs: Record<string, string> = {}): HTMLButtonElement {
  const button = iconButton(copyIcon, title, { 'data-action': 'copy', ...attrs });
  button.addEventListener('click', event => {
    event.stopPropagation();
    Clipboard.copyToSystem(text);
    button.classList.add('odh-copied');
    window.setTimeout(() => button.classList.remove('odh-copied'), 1200);
    onCopied?.(text);
  });
  return button;
}

/** A URL as a link (new tab) with a copy button: `<div class=odh-url><a>url</a><button/></div>`. */
export function urlLine(url: string, attrs: Record<string, string> = {}, onCopied?: (text: string) => void): HTMLElement {
  const link = h('a', { class: 'odh-url-link', href: url, target: '_blank', rel: 'noopener noreferrer', title: url, ...attrs }, url);
  return h('div', { class: 'odh-url' }, link, copyButton(url, 'Copy URL', onCopied));
}

/** A `<pre>` block with a copy button in its corner. */
export function copyablePre(text: string, attrs: Record<string, string> = {}, onCopied?: (text: string) => void): HTMLElement {
  return h('div', { class: 'odh-pre-wrap' }, h('pre', { class: 'odh-pre', ...attrs }, text), copyButton(text, 'Copy', onCopied));
}

/** The last error and the log tail of a failed (or restarting) deployment. */
export function errorBlock(d: IDeployment, attrs: Record<string, string> = {}): HTMLElement {
  const block = h('div', { class: 'odh-deploy-failure', ...attrs });
  block.append(h('div', { class: 'odh-deploy-error-text' }, d.last_error || 'The deployment failed (no error message).'));
  if (d.log_tail?.length) {
    block.append(h('div', { class: 'odh-subtitle' }, 'Log tail'), h('pre', { class: 'odh-pre odh-log-tail' }, d.log_tail.join('\n')));
  }
  return block;
}

/** A labelled value row of a key/value list. */
export function field(label: string, ...value: (Node | string)[]): HTMLElement {
  return h('div', { class: 'odh-field' }, h('span', { class: 'odh-field-label' }, label), h('span', { class: 'odh-field-value' }, ...value));
}
