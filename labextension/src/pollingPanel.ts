/**
 * A side panel that refreshes itself every `refreshMs` while it is visible (and once when it is shown), and
 * not at all while hidden.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

export abstract class PollingPanel extends Widget {
  constructor(private readonly _refreshMs: number) {
    super();
  }

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
    await this.refresh();
    window.clearTimeout(this._timer);
    if (this.isVisible && !this.isDisposed) {
      this._timer = window.setTimeout(() => void this._tick(), this._refreshMs);
    }
  }

  private _timer = 0;
}
