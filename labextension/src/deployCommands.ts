/**
 * Model deployments: the Deployments panel, "Deploy model…" (palette and file browser
 * context menu on .joblib/.pkl/.pickle files and MLflow model directories) and the progress tab.
 */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { FileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import {
  createDeployment,
  deployNewVersion,
  Framework,
  frameworkFor,
  IDeployment,
  listDeployments,
  MODEL_FILE
} from './deployApi';
import { askDeployment } from './deployDialog';
import { DeploymentsPanel } from './deployments';
import { DeployProgress } from './deployProgress';
import { errorMessage } from './handler';
import { deploymentsIcon } from './icons';

export namespace DeployCommandIDs {
  export const deploy = 'odh:deploy-model';
  export const open = 'odh:open-deployments';
  export const refresh = 'odh:refresh-deployments';
}

/** File browser items the deploy command is offered on (narrowed by `isVisible`). */
const ITEM_SELECTOR = '.jp-DirListing-content .jp-DirListing-item[data-isdir]';

interface IModelTarget {
  path: string;
  isDirectory: boolean;
}

export interface IDeployOptions {
  app: JupyterFrontEnd;
  palette: ICommandPalette | null;
  restorer: ILayoutRestorer | null;
  factory: IFileBrowserFactory | null;
  defaultBrowser: FileBrowser | null;
}

function isModel(item: { name: string; type: string }): boolean {
  return item.type === 'directory' || MODEL_FILE.test(item.name);
}

export function activateDeployments(options: IDeployOptions): DeploymentsPanel {
  const { app, palette, restorer, factory, defaultBrowser } = options;
  const { commands, shell } = app;
  const panel = new DeploymentsPanel();
  shell.add(panel, 'left', { rank: 260 });
  restorer?.add(panel, 'odh-deployments-panel');

  /** The file browser's single selected item when it is a model file or directory. */
  const selectedModel = (): IModelTarget | null => {
    const browser = factory?.tracker.currentWidget ?? defaultBrowser;
    if (!browser) {
      return null;
    }
    const items = Array.from(browser.selectedItems());
    if (items.length !== 1 || !isModel(items[0])) {
      return null;
    }
    return { path: items[0].path, isDirectory: items[0].type === 'directory' };
  };

  const targetOf = async (args: ReadonlyPartialJSONObject): Promise<IModelTarget | null> => {
    if (typeof args.path === 'string' && args.path) {
      return { path: args.path, isDirectory: !!args.isDirectory || !MODEL_FILE.test(args.path) };
    }
    const selected = selectedModel();
    if (selected) {
      return selected;
    }
    const result = await InputDialog.getText({
      title: 'Deploy model',
      label: 'Path of a .joblib/.pkl/.pickle file or an MLflow model folder (relative to the Jupyter root)',
      placeholder: 'models/iris.joblib',
      okLabel: 'Next'
    });
    const path = (result.value ?? '').trim().replace(/^\/+/, '');
    return result.button.accept && path ? { path, isDirectory: !MODEL_FILE.test(path) } : null;
  };

  const deploy = async (args: ReadonlyPartialJSONObject): Promise<void> => {
    const target = await targetOf(args);
    if (!target) {
      return;
    }
    const framework = (args.framework as Framework | undefined) ?? frameworkFor(target.path, target.isDirectory);
    let existing: IDeployment[] = [];
    let listError: string | null = null;
    try {
      existing = await listDeployments();
    } catch (error) {
      listError = errorMessage(error);
    }
    const choice = await askDeployment(target.path, framework, existing, listError);
    if (!choice) {
      return;
    }
    const request = choice.asNewVersion
      ? deployNewVersion(choice.name, target.path, framework)
      : createDeployment(choice.name, target.path, framework);
    // One progress tab per deployment name: a new deploy replaces the previous tab.
    for (const widget of Array.from(shell.widgets('main'))) {
      if (widget instanceof DeployProgress && widget.name === choice.name) {
        widget.dispose();
      }
    }
    const progress = new DeployProgress(choice.name, request, choice.asNewVersion);
    shell.add(progress, 'main', { mode: 'split-right' });
    shell.activateById(progress.id);
    request.then(
      () => void panel.refresh(),
      () => undefined
    );
  };

  commands.addCommand(DeployCommandIDs.deploy, {
    label: 'Deploy model…',
    caption: 'Serve a scikit-learn (.joblib/.pkl/.pickle) or MLflow model over HTTP',
    icon: args => (args.isPalette ? undefined : deploymentsIcon),
    isVisible: args => !!args.isPalette || typeof args.path === 'string' || selectedModel() !== null,
    execute: async args => {
      try {
        await deploy(args);
      } catch (error) {
        await showErrorMessage('Deploy model', errorMessage(error));
      }
    }
  });
  commands.addCommand(DeployCommandIDs.open, {
    label: 'Open Deployments',
    caption: 'Show the model deployments panel',
    icon: args => (args.isPalette ? undefined : deploymentsIcon),
    execute: () => shell.activateById(panel.id)
  });
  commands.addCommand(DeployCommandIDs.refresh, {
    label: 'Refresh Deployments',
    execute: () => panel.refresh(true)
  });

  app.contextMenu.addItem({ command: DeployCommandIDs.deploy, selector: ITEM_SELECTOR, rank: 60 });
  if (palette) {
    const category = 'Model Deployments';
    for (const command of Object.values(DeployCommandIDs)) {
      palette.addItem({ command, category, args: { isPalette: true } });
    }
  }
  return panel;
}
