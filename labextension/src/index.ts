import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { addCommands, CommandIDs } from './commands';
import { BucketBrowser } from './panel';
import { ISnippet, parseSnippets } from './snippets';

export { CommandIDs } from './commands';

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

export default plugin;
