/** The markup of one deployment in the Deployments panel. */
import { caretDownIcon, caretRightIcon, deleteIcon, historyIcon, runIcon } from '@jupyterlab/ui-components';

import { IDeployment } from './deployApi';
import { copyablePre, errorBlock, field, stateBadge, urlLine, versionText, when } from './deployView';
import { h, iconButton } from './dom';

/** The outcome of the row's last test prediction (kept across refreshes). */
export interface ITestResult {
  state: 'running' | 'done' | 'failed';
  text: string;
}

/** Whether there is an earlier, not failed version to roll back to. */
export function canRollback(d: IDeployment): boolean {
  return (d.versions ?? []).some(v => v.version < d.version && v.state !== 'Failed');
}

function versionsList(d: IDeployment): HTMLElement {
  const list = h('ul', { class: 'odh-versions' });
  const versions = [...(d.versions ?? [])].sort((a, b) => b.version - a.version);
  for (const v of versions) {
    const serving = v.version === d.version;
    const item = h(
      'li',
      { class: 'odh-version' + (serving ? ' odh-serving' : ''), 'data-version': String(v.version), 'data-state': v.state, title: `${v.model_uri}\ncreated ${when(v.created)}` },
      h('span', { class: 'odh-version-number' }, `v${v.version}`),
      stateBadge(v.state),
      h('span', { class: 'odh-version-uri' }, v.model_uri),
      serving ? h('span', { class: 'odh-version-serving' }, 'serving') : ''
    );
    list.append(item);
  }
  if (!versions.length) {
    list.append(h('li', { class: 'odh-empty' }, 'No versions.'));
  }
  return list;
}

/** Who may call the endpoint, the buttons that change it, and (once asked for) the example request with the key. */
function accessBlock(d: IDeployment, shown: IDeployment | undefined, onCopied: (text: string) => void): HTMLElement {
  const block = h('div', { class: 'odh-deployment-access', 'data-public': String(!!d.public) });
  block.append(
    field('Access', d.public ? 'public: anyone may call it' : 'its API key or your hub token'),
    h(
      'div',
      { class: 'odh-deployment-access-actions' },
      h('button', { class: 'odh-button', type: 'button', 'data-action': 'show-key', title: 'Show the API key and an example request' }, 'Show key'),
      h('button', { class: 'odh-button', type: 'button', 'data-action': 'rotate-key', title: 'A new API key; the old one stops working at once' }, 'Rotate key'),
      h('button', { class: 'odh-button', type: 'button', 'data-action': 'toggle-public', title: d.public ? 'Require the key or your token again' : 'Let anyone call the endpoint without a key' }, d.public ? 'Make private' : 'Make public')
    )
  );
  if (shown?.example_request?.curl) {
    block.append(h('div', { class: 'odh-subtitle' }, 'Example request'), copyablePre(shown.example_request.curl, { class: 'odh-pre odh-deployment-example' }, onCopied));
  }
  return block;
}

export function deploymentRow(
  d: IDeployment,
  expanded: boolean,
  test: ITestResult | undefined,
  onCopied: (text: string) => void,
  shown?: IDeployment
): HTMLLIElement {
  const li = h('li', { class: 'odh-deployment' + (expanded ? ' odh-expanded' : ''), 'data-name': d.name, 'data-state': d.state, 'data-stage': d.stage || '' });
  const toggle = iconButton(expanded ? caretDownIcon : caretRightIcon, expanded ? 'Hide details' : 'Show details', {
    'data-action': 'toggle',
    'aria-expanded': String(expanded),
    class: 'odh-button odh-deployment-toggle'
  });
  const head = h(
    'div',
    { class: 'odh-deployment-head' },
    toggle,
    h('button', { class: 'odh-deployment-name odh-link', type: 'button', 'data-action': 'toggle', title: `${d.name} (owner ${d.owner})` }, d.name),
    stateBadge(d.state),
    h('span', { class: 'odh-deployment-version', title: 'Serving version' }, versionText(d))
  );
  const rollback = iconButton(historyIcon, canRollback(d) ? 'Roll back to the previous version' : 'No previous version to roll back to', { 'data-action': 'rollback' });
  rollback.disabled = !canRollback(d) || d.state === 'Deleting';
  const testButton = iconButton(runIcon, 'Test: predict the stored example', { 'data-action': 'test' });
  testButton.disabled = d.state !== 'Available' || test?.state === 'running';
  const remove = iconButton(deleteIcon, 'Delete deployment…', { 'data-action': 'delete' });
  remove.disabled = d.state === 'Deleting';
  const url = d.infer_url || d.url;
  li.append(
    head,
    h(
      'div',
      { class: 'odh-deployment-meta' },
      h('div', { class: 'odh-deployment-uri', title: `${d.model_uri} (${d.framework})` }, d.model_uri || ''),
      h('div', { class: 'odh-deployment-created' }, `created ${when(d.created)}${d.stage && d.state === 'Creating' ? ` · ${d.stage}` : ''}`),
      url ? urlLine(url, { class: 'odh-url-link odh-deployment-url' }, onCopied) : ''
    ),
    h('div', { class: 'odh-deployment-actions' }, testButton, rollback, remove)
  );
  if (test) {
    li.append(h('div', { class: 'odh-deployment-test', 'data-state': test.state }, h('code', {}, test.text)));
  }
  if (expanded) {
    const details = h('div', { class: 'odh-deployment-details' });
    details.append(
      field('Framework', d.framework || ''),
      field('Updated', when(d.updated)),
      d.url && d.url !== url ? field('Service', d.url) : '',
      field('Restarts', String(d.restarts ?? 0)),
      accessBlock(d, shown, onCopied),
      h('div', { class: 'odh-subtitle' }, 'Versions'),
      versionsList(d)
    );
    if (d.last_error || d.log_tail?.length) {
      details.append(h('div', { class: 'odh-subtitle' }, 'Last error'), errorBlock(d, { class: 'odh-deploy-failure odh-deployment-error' }));
    }
    li.append(details);
  } else if (d.state === 'Failed' && d.last_error) {
    li.append(h('div', { class: 'odh-deployment-error-line', title: d.last_error }, d.last_error));
  }
  return li;
}
