import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { addCommands, CommandIDs } from './commands';
import { activateDeployments } from './deployCommands';
import { activateIngestions } from './ingestCommands';
import { BucketBrowser } from './panel';
import { ISnippet, parseSnippets } from './snippets';
import { activateSpark } from './sparkCommands';
import { UsagePanel } from './usage';

export { CommandIDs } from './commands';
export { DeployCommandIDs } from './deployCommands';
export { IngestCommandIDs } from './ingestCommands';
export { SparkCommandIDs } from './sparkCommands';

const PLUGIN_ID = '@odh-hub/labextension:buckets';

/** The bucket browser: a left-sidebar panel over the odh REST API (`{baseUrl}odh/api`). */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: "Browse, upload and download the user's S3 buckets from a sidebar panel.",
  autoStart: true,
  optional: [ISettingRegistry, INotebookTracker, ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry | null,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    let snippets: ISnippet[] = [];
    const panel = new BucketBrowser({
      insertSnippet: (bucket, key) =>
        app.commands.execute(CommandIDs.insertSnippet, { bucket, key })
    });
    app.shell.add(panel, 'left', { rank: 250 });
    restorer?.add(panel, 'odh-bucket-browser');
    addCommands({ app, panel, tracker, palette, snippets: () => snippets });

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings): void => {
        const pageSize = Number(settings.get('pageSize').composite);
        panel.pageSize = Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 1000 ? pageSize : 200;
        snippets = parseSnippets(settings.get('snippets').composite);
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error(`${PLUGIN_ID}: could not load settings`, reason);
        });
    }
  }
};

/** Model deployments: the Deployments panel and "Deploy model…" (palette, file browser). */
const deployments: JupyterFrontEndPlugin<void> = {
  id: '@odh-hub/labextension:deployments',
  description: 'Deploy scikit-learn and MLflow models as HTTP endpoints and manage the deployments.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, IFileBrowserFactory, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    factory: IFileBrowserFactory | null,
    defaultBrowser: IDefaultFileBrowser | null
  ) => {
    activateDeployments({ app, palette, restorer, factory, defaultBrowser });
  }
};

/** The Spark cluster: a status bar item (when Spark is enabled) and the Spark panel. */
const spark: JupyterFrontEndPlugin<void> = {
  id: '@odh-hub/labextension:spark',
  description: "Show the user's Spark cluster in the status bar; scale and restart it.",
  autoStart: true,
  optional: [ICommandPalette, IStatusBar],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, statusBar: IStatusBar | null) => {
    activateSpark({ app, palette, statusBar });
  }
};

/** Kafka ingestion: the Ingestions panel, "New ingestion…" and the object viewer. */
const ingestions: JupyterFrontEndPlugin<void> = {
  id: '@odh-hub/labextension:ingestions',
  description: "Stream Kafka topics into the user's buckets and watch the ingestions.",
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, restorer: ILayoutRestorer | null) => {
    activateIngestions({ app, palette, restorer });
  }
};

/** The user's usage and limits: the Usage panel. */
const usage: JupyterFrontEndPlugin<void> = {
  id: '@odh-hub/labextension:usage',
  description: "Show the user's CPU hours, memory, storage against their quota and running resources with their limits.",
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null, restorer: ILayoutRestorer | null) => {
    const panel = new UsagePanel();
    app.shell.add(panel, 'left', { rank: 280 });
    restorer?.add(panel, 'odh-usage-panel');
    app.commands.addCommand('odh:open-usage', {
      label: 'Open Usage',
      caption: 'Show your usage and limits',
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: 'odh:open-usage', category: 'odh-hub' });
  }
};

export default [plugin, deployments, spark, ingestions, usage];
