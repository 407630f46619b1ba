/** The "Deploy model" dialog: a deployment name, checked as typed, new version when it exists. */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  IDeployment,
  NAME_HTML_PATTERN,
  NAME_MAX_LENGTH,
  nameProblem,
  suggestName
} from './deployApi';
import { h } from './dom';
import { versionText } from './deployView';

export interface IDeployChoice {
  name: string;
  /** The name is taken: deploy the model as the next version of that deployment. */
  asNewVersion: boolean;
}

const DEPLOY = 'Deploy';
const NEW_VERSION = 'Deploy as new version';

class DeployBody extends Widget implements Dialog.IBodyWidget<IDeployChoice> {
  constructor(path: string, framework: string | undefined, existing: IDeployment[], listError: string | null) {
    super();
    this.addClass('odh-deploy-dialog');
    this._existing = new Map(existing.map(d => [d.name, d]));
    this.input = h('input', {
      id: 'odh-deploy-name',
      class: 'jp-mod-styled odh-deploy-name',
      type: 'text',
      required: '',
      pattern: NAME_HTML_PATTERN,
      spellcheck: 'false',
      autocomplete: 'off',
      'aria-describedby': 'odh-deploy-name-problem'
    });
    this.input.value = suggestName(path);
    this.input.addEventListener('input', () => this._check());
    this._problem = h('div', { id: 'odh-deploy-name-problem', class: 'odh-deploy-name-problem', role: 'alert' });
    this._exists = h('div', { class: 'odh-deploy-name-exists' });
    this.node.append(
      h('div', { class: 'odh-field' }, h('span', { class: 'odh-field-label' }, 'Model'), h('code', { class: 'odh-field-value', title: path }, path)),
      framework ? h('div', { class: 'odh-field' }, h('span', { class: 'odh-field-label' }, 'Framework'), h('span', { class: 'odh-field-value' }, framework)) : '',
      h('label', { class: 'odh-deploy-name-label', for: 'odh-deploy-name' }, `Deployment name (a–z, 0–9 and "-", at most ${NAME_MAX_LENGTH} characters)`),
      this.input,
      this._problem,
      this._exists,
      listError ? h('div', { class: 'odh-deploy-list-error' }, `Could not check existing deployments: ${listError}`) : ''
    );
  }

  readonly input: HTMLInputElement;

  getValue(): IDeployChoice {
    const name = this.input.value.trim();
    return { name, asNewVersion: this._existing.has(name) };
  }

  protected onAfterAttach(): void {
    this._check();
    this.input.select();
  }

  /** Explain an invalid name; offer a new version for a taken one (the accept button's label). */
  private _check(): void {
    const name = this.input.value.trim();
    const problem = nameProblem(name);
    this._problem.textContent = problem ?? '';
    this._problem.hidden = !problem;
    this.input.classList.toggle('odh-invalid', !!problem);
    const taken = problem ? undefined : this._existing.get(name);
    this._exists.hidden = !taken;
    this._exists.textContent = taken
      ? `"${name}" already exists (${taken.state}, serving ${versionText(taken)}, ${taken.model_uri}). ` +
        'The model will be deployed as its next version.'
      : '';
    const label = this.node.closest('.jp-Dialog')?.querySelector('.jp-mod-accept .jp-Dialog-buttonLabel');
    if (label) {
      label.textContent = taken ? NEW_VERSION : DEPLOY;
    }
  }

  private _existing: Map<string, IDeployment>;
  private _problem: HTMLElement;
  private _exists: HTMLElement;
}

/**
 * Ask for the deployment name of the model at `path`; null when cancelled. The dialog's
 * accept button is disabled while the name is invalid (the input's `pattern`).
 */
export async function askDeployment(
  path: string,
  framework: string | undefined,
  existing: IDeployment[],
  listError: string | null
): Promise<IDeployChoice | null> {
  const body = new DeployBody(path, framework, existing, listError);
  const result = await showDialog<IDeployChoice>({
    title: 'Deploy model',
    body,
    focusNodeSelector: 'input',
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: DEPLOY })]
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  const problem = nameProblem(result.value.name);
  if (problem) {
    throw new Error(`"${result.value.name}" is not a valid deployment name: ${problem}`);
  }
  return result.value;
}
