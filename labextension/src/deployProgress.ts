/**
 * The progress view of one deployment (a main-area tab): stages uploading → creating →
 * starting → ready, polled every second, then the endpoint, example request and test
 * prediction, or the error and log tail.
 */
import { Widget } from '@lumino/widgets';

import {
  DeploymentStage,
  getDeployment,
  IDeployment,
  IDeploymentVersion,
  predict,
  STAGES
} from './deployApi';
import { copyablePre, errorBlock, field, predictionText, stateBadge, urlLine, versionText } from './deployView';
import { h, Messages } from './dom';
import { errorMessage, errorStatus } from './handler';
import { deploymentsIcon } from './icons';

export type StageState = 'pending' | 'active' | 'done' | 'failed';

const POLL_MS = 1000;
const STAGE_LABELS: Record<string, string> = {
  uploading: 'Uploading the model',
  creating: 'Creating the deployment',
  starting: 'Starting the model server',
  ready: 'Ready'
};

/** The one element carrying the `#odh-deploy-progress` id: the newest progress view's. */
let newest: HTMLElement | null = null;

export class DeployProgress extends Widget {
  /**
   * @param name the deployment
   * @param request the POST creating it (or its new version), started by the caller
   */
  constructor(readonly name: string, request: Promise<IDeployment>, asNewVersion: boolean) {
    super();
    this.id = `odh-deploy-${name}`;
    this.addClass('odh-Panel');
    this.addClass('odh-DeployProgress');
    this.title.label = `Deploy: ${name}`;
    this.title.caption = `Deployment ${name}`;
    this.title.icon = deploymentsIcon;
    this.title.closable = true;
    this._content = h('div', { class: 'odh-deploy-progress', 'data-name': name, 'data-result': 'pending' });
    newest?.removeAttribute('id');
    newest = this._content;
    this._content.id = 'odh-deploy-progress';
    this._stages = h('ol', { class: 'odh-stages' });
    for (const stage of STAGES) {
      this._stages.append(
        h('li', { class: 'odh-stage', 'data-stage': stage, 'data-state': 'pending' }, h('span', { class: 'odh-stage-mark' }), h('span', { class: 'odh-stage-label' }, STAGE_LABELS[stage]))
      );
    }
    this._summary = h('div', { class: 'odh-deploy-summary' });
    this._result = h('div', { class: 'odh-deploy-result' });
    this._content.append(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, `${asNewVersion ? 'New version of' : 'Deploying'} ${name}`)),
      this._stages,
      this._summary,
      this._messages.error,
      this._messages.status,
      this._result
    );
    this.node.append(this._content);
    this._setStage('uploading', false);
    void this._start(request);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    if (newest === this._content) {
      newest = null;
    }
    super.dispose();
  }

  private async _start(request: Promise<IDeployment>): Promise<void> {
    let d: IDeployment;
    try {
      d = await request;
    } catch (error) {
      this._fail(errorMessage(error));
      return;
    }
    // The version this deployment is about: the newest one the POST answered with.
    this._target = Math.max(d.version || 0, ...(d.versions ?? []).map(v => v.version));
    this._update(d);
  }

  private _schedule(): void {
    window.clearTimeout(this._timer);
    if (!this.isDisposed) {
      this._timer = window.setTimeout(() => void this._poll(), POLL_MS);
    }
  }

  private async _poll(): Promise<void> {
    try {
      this._update(await getDeployment(this.name));
    } catch (error) {
      if (this.isDisposed) {
        return;
      }
      if (errorStatus(error) === 404) {
        this._fail(`The deployment ${this.name} no longer exists.`);
        return;
      }
      // A network blip or a busy server: say so and keep polling.
      this._messages.showStatus(`Checking again: ${errorMessage(error)}`);
      this._schedule();
    }
  }

  private _update(d: IDeployment): void {
    if (this.isDisposed) {
      return;
    }
    this._renderSummary(d);
    const target: IDeploymentVersion | undefined = (d.versions ?? []).find(v => v.version === this._target);
    const failed = d.state === 'Failed' || d.stage === 'failed' || target?.state === 'Failed';
    const ready = !failed && d.state === 'Available' && d.stage === 'ready' && target?.state !== 'Creating';
    if (failed) {
      this._setStage(this._lastStage, true);
      this._content.dataset.result = 'failed';
      this._result.textContent = '';
      this._result.append(errorBlock(d, { id: 'odh-deploy-error' }));
      return;
    }
    if (ready) {
      this._setStage('ready', false);
      this._content.dataset.result = 'ready';
      this._renderReady(d);
      return;
    }
    if (d.stage !== 'failed' && STAGES.includes(d.stage)) {
      this._setStage(d.stage, false);
    }
    this._schedule();
  }

  /** Mark stages before `stage` done, `stage` active (ready: done) or failed, later ones pending. */
  private _setStage(stage: DeploymentStage, failed: boolean): void {
    this._lastStage = stage;
    const at = STAGES.indexOf(stage);
    this._stages.querySelectorAll<HTMLElement>('.odh-stage').forEach((el, i) => {
      let state: StageState = i < at ? 'done' : i > at ? 'pending' : failed ? 'failed' : 'active';
      if (i === at && stage === 'ready' && !failed) {
        state = 'done';
      }
      el.dataset.state = state;
    });
  }

  private _fail(message: string): void {
    this._setStage(this._lastStage, true);
    this._content.dataset.result = 'failed';
    this._result.textContent = '';
    this._result.append(h('div', { id: 'odh-deploy-error', class: 'odh-deploy-failure' }, h('div', { class: 'odh-deploy-error-text' }, message)));
  }

  private _renderSummary(d: IDeployment): void {
    this._summary.textContent = '';
    this._summary.append(
      field('State', stateBadge(d.state), ` ${d.stage}`),
      field('Version', versionText(d)),
      field('Model', d.model_uri || ''),
      d.restarts ? field('Restarts', String(d.restarts)) : ''
    );
  }

  private _renderReady(d: IDeployment): void {
    const copied = (text: string): void => this._messages.showStatus(`Copied ${text.length > 60 ? text.slice(0, 59) + '…' : text}`);
    this._result.textContent = '';
    const url = d.infer_url || d.url;
    this._result.append(
      h('div', { class: 'odh-subtitle' }, 'Endpoint'),
      url
        ? h('div', { id: 'odh-deploy-url', class: 'odh-deploy-url', 'data-url': url }, urlLine(url, {}, copied))
        : h('div', { id: 'odh-deploy-url', class: 'odh-deploy-url odh-empty' }, 'No URL reported.')
    );
    if (d.example_request?.curl) {
      this._result.append(h('div', { class: 'odh-subtitle' }, 'Example request'), copyablePre(d.example_request.curl, { class: 'odh-pre odh-deploy-example' }, copied));
    }
    const test = h('div', { id: 'odh-deploy-test-prediction', class: 'odh-deploy-test' });
    const show = (text: string, ok: boolean): void => {
      test.textContent = '';
      test.dataset.state = ok ? 'done' : 'failed';
      test.append(h('code', { class: ok ? 'odh-prediction' : 'odh-error-inline' }, text));
    };
    if (d.test_prediction) {
      show(predictionText(d.test_prediction), true);
    } else {
      test.append(h('span', { class: 'odh-empty' }, 'No test prediction was made. '));
      const run = h('button', { class: 'jp-Button jp-mod-styled jp-mod-accept odh-small-button', type: 'button', 'data-action': 'test' }, 'Run test');
      run.addEventListener('click', () => {
        run.disabled = true;
        predict(d.name).then(p => show(predictionText(p), true), error => show(errorMessage(error), false));
      });
      test.append(run);
    }
    this._result.append(h('div', { class: 'odh-subtitle' }, 'Test prediction (input → output)'), test);
  }

  private _content: HTMLElement;
  private _stages: HTMLElement;
  private _summary: HTMLElement;
  private _result: HTMLElement;
  private _messages = new Messages();
  private _lastStage: DeploymentStage = 'uploading';
  private _target = 0;
  private _timer = 0;
}
