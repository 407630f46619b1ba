/**
 * Which odh features this server has (`GET {baseUrl}odh/api/features`), asked once per page, and the
 * disabled state a feature's panel shows instead of its content when the feature is off: the reason
 * (e.g. "Kafka ingestion is left out of your server's profile 'Minimal Python'; start your server with
 * 'Standard Data Science' to use it."), no buttons, no polling, no error.
 */
import { h } from './dom';
import { requestAPI } from './handler';

export type FeatureName = 'buckets' | 'deployments' | 'ingestions' | 'spark';

export interface IFeature {
  enabled: boolean;
  reason: string | null;
  left_out: boolean;
}

export interface IFeatures {
  profile: string;
  features: Partial<Record<FeatureName, IFeature>>;
}

let asked: Promise<IFeatures | null> | null = null;

/**
 * The server's features (they do not change while it runs, so asked once). null when the server does not
 * answer (e.g. an older server extension): then the panels work as they did and show the endpoints' errors.
 */
export function getFeatures(): Promise<IFeatures | null> {
  if (!asked) {
    asked = requestAPI<IFeatures>('features').catch(() => {
      asked = null; // ask again next time
      return null;
    });
  }
  return asked;
}

/** Why `feature` is off on this server, or null when it is on (or the server does not say). */
export async function featureOffReason(feature: FeatureName): Promise<string | null> {
  const state = (await getFeatures())?.features?.[feature];
  if (!state || state.enabled) {
    return null;
  }
  return state.reason || 'This feature is not available on this server.';
}

/**
 * One panel's feature: `isOn()` asks once; when the feature is off it replaces the panel's content with its
 * title and the reason (`.odh-feature-off[data-feature]`) and answers false from then on.
 */
export class FeatureGate {
  constructor(
    private readonly _node: HTMLElement,
    readonly feature: FeatureName,
    private readonly _title: string
  ) {}

  /** Whether the feature is off (known only after `isOn()` answered). */
  get off(): boolean {
    return this._reason !== null;
  }

  get reason(): string | null {
    return this._reason;
  }

  async isOn(): Promise<boolean> {
    if (this._reason === null && !this._asked) {
      this._asked = true;
      this._reason = await featureOffReason(this.feature);
      if (this._reason === null) {
        this._asked = (await getFeatures()) !== null; // not answered: ask again at the next refresh
      } else {
        this._showOff(this._reason);
      }
    }
    return this._reason === null;
  }

  private _showOff(reason: string): void {
    this._node.replaceChildren(
      h('div', { class: 'odh-header' }, h('span', { class: 'odh-title' }, this._title)),
      h('div', { class: 'odh-feature-off', 'data-feature': this.feature, role: 'note' }, reason)
    );
    this._node.classList.add('odh-mod-feature-off');
    this._node.dataset.featureOff = this.feature;
  }

  private _asked = false;
  private _reason: string | null = null;
}
