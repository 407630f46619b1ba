/** The Spark status bar item, the Spark panel and their commands. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';

import { sparkIcon } from './icons';
import { SparkModel, SparkStatusItem } from './spark';
import { SparkPanel } from './sparkPanel';

export namespace SparkCommandIDs {
  export const open = 'odh:open-spark';
  export const refresh = 'odh:refresh-spark';
}

export interface ISparkOptions {
  app: JupyterFrontEnd;
  palette: ICommandPalette | null;
  statusBar: IStatusBar | null;
}

export function activateSpark(options: ISparkOptions): SparkModel {
  const { app, palette, statusBar } = options;
  const { commands, shell } = app;
  const model = new SparkModel();
  let panel: SparkPanel | null = null;

  commands.addCommand(SparkCommandIDs.open, {
    label: 'Open Spark Cluster',
    caption: 'Spark cluster status: workers, cores, memory, applications; scale and restart',
    icon: args => (args.isPalette ? undefined : sparkIcon),
    execute: () => {
      if (!panel || panel.isDisposed) {
        panel = new SparkPanel(model);
      }
      if (!panel.isAttached) {
        shell.add(panel, 'main', { mode: 'split-right' });
      }
      shell.activateById(panel.id);
    }
  });
  commands.addCommand(SparkCommandIDs.refresh, {
    label: 'Refresh Spark Cluster Status',
    execute: () => model.refresh()
  });

  if (palette) {
    for (const command of Object.values(SparkCommandIDs)) {
      palette.addItem({ command, category: 'Spark', args: { isPalette: true } });
    }
  }

  if (statusBar) {
    const item = new SparkStatusItem(model, () => void commands.execute(SparkCommandIDs.open));
    statusBar.registerStatusItem('@odh-hub/labextension:spark-status', {
      item,
      align: 'left',
      rank: 50,
      isActive: () => item.active,
      activeStateChanged: item.activeStateChanged
    });
    model.start();
  }
  return model;
}
