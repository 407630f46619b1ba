/**
 * A side panel that refreshes itself every `refreshMs` while it is visible (and once when it is shown), and
 * not at all while hidden. A panel of an odh feature (`feature`) first asks whether the server has it; when
 * not, it shows the reason instead of its content and never refreshes (features.ts).
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { FeatureGate, FeatureName } from './features';

export abstract class PollingPanel extends Widget {
  constructor(private readonly _refreshMs: number, feature?: { name: FeatureName; title: string }) {
    super();
    this.gate = feature ? new FeatureGate(this.node, feature.name, feature.title) : null;
  }

  /** The panel's feature (null: not a feature's panel). */
  readonly gate: FeatureGate | null;

  abstract refresh(): Promise<void>;

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this._tick();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearTimeout(this._timer);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private async _tick(): Promise<void> {
    window.clearTimeout(this._timer);
    if (this.gate && !(await this.gate.isOn())) {
      return; // the feature is off: its reason is shown, nothing polls
    }
    await this.refresh();
    window.clearTimeout(this._timer);
    if (this.isVisible && !this.isDisposed) {
      this._timer = window.setTimeout(() => void this._tick(), this._refreshMs);
    }
  }

  private _timer = 0;
}
