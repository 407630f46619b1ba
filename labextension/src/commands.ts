/** Commands of the bucket browser, their palette entries and context menu items. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { s3Path } from './api';
import { IRowTarget } from './dom';
import { errorMessage } from './handler';
import { bucketIcon } from './icons';
import { BucketBrowser } from './panel';
import { insertCodeCell, ISnippet, renderSnippet } from './snippets';

export namespace CommandIDs {
  export const open = 'odh-buckets:open';
  export const refresh = 'odh-buckets:refresh';
  export const insertSnippet = 'odh-buckets:insert-snippet';
  export const download = 'odh-buckets:download';
  export const copyPath = 'odh-buckets:copy-path';
  export const remove = 'odh-buckets:delete';
}

const ROW_SELECTOR = '#odh-bucket-browser .odh-row';
const OBJECT_SELECTOR = '#odh-bucket-browser .odh-row[data-key]';

export interface ICommandContext {
  app: JupyterFrontEnd;
  panel: BucketBrowser;
  tracker: INotebookTracker | null;
  /** The current snippet templates (from the settings). */
  snippets: () => ISnippet[];
  palette: ICommandPalette | null;
}

/** The row a command is about: explicit `bucket` + `key`/`prefix` args, else the selected row. */
function targetOf(args: ReadonlyPartialJSONObject, panel: BucketBrowser): IRowTarget | null {
  const bucket = args.bucket as string | undefined;
  if (bucket) {
    const key = args.key as string | undefined;
    const prefix = args.prefix as string | undefined;
    return { bucket, key, prefix, path: s3Path(bucket, key ?? prefix ?? '') };
  }
  return panel.selected;
}

async function insertSnippet(ctx: ICommandContext, args: ReadonlyPartialJSONObject): Promise<void> {
  const { app, panel, tracker } = ctx;
  const target = targetOf(args, panel);
  if (!target || target.key === undefined) {
    throw new Error('Select an object in the bucket browser first.');
  }
  if (!tracker?.currentWidget) {
    throw new Error('Open a notebook first: the snippet goes below its active cell.');
  }
  const snippets = ctx.snippets();
  if (!snippets.length) {
    throw new Error('No code snippets are configured (settings "Buckets" → snippets).');
  }
  let snippet: ISnippet | undefined;
  if (args.snippet) {
    snippet = snippets.find(s => s.name === args.snippet);
    if (!snippet) {
      throw new Error(`No snippet named "${args.snippet}".`);
    }
  } else if (snippets.length === 1) {
    snippet = snippets[0];
  } else {
    const choice = await InputDialog.getItem({
      title: 'Insert code snippet',
      label: `Code to read ${target.path}`,
      items: snippets.map(s => s.name),
      current: 0,
      okLabel: 'Insert'
    });
    if (!choice.button.accept || choice.value === null) {
      return;
    }
    snippet = snippets.find(s => s.name === choice.value);
  }
  if (!snippet) {
    return;
  }
  const notebook = tracker.currentWidget;
  insertCodeCell(tracker, renderSnippet(snippet.template, target.bucket, target.key));
  app.shell.activateById(notebook.id);
}

export function addCommands(ctx: ICommandContext): void {
  const { app, panel, palette } = ctx;
  const { commands } = app;
  // Failures are shown in the panel: a command run from a menu or the palette must not
  // end in an unhandled rejection.
  const guarded = (fn: (args: ReadonlyPartialJSONObject) => Promise<unknown> | unknown) =>
    async (args: ReadonlyPartialJSONObject): Promise<void> => {
      try {
        await fn(args);
      } catch (error) {
        panel.showError(errorMessage(error));
        app.shell.activateById(panel.id);
      }
    };
  const rowAction = (action: string) =>
    guarded(async args => {
      const target = targetOf(args, panel);
      if (!target) {
        throw new Error('Select a row in the bucket browser first.');
      }
      await panel.act(action, target);
    });

  commands.addCommand(CommandIDs.open, {
    label: 'Open Buckets',
    caption: 'Show the bucket browser',
    icon: args => (args.isPalette ? undefined : bucketIcon),
    execute: () => app.shell.activateById(panel.id)
  });
  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Buckets',
    execute: guarded(() => panel.refresh())
  });
  commands.addCommand(CommandIDs.insertSnippet, {
    label: 'Insert Code Snippet for Object',
    caption: 'Insert code reading the selected object below the active notebook cell',
    execute: guarded(args => insertSnippet(ctx, args))
  });
  commands.addCommand(CommandIDs.download, {
    label: 'Download',
    execute: rowAction('download')
  });
  commands.addCommand(CommandIDs.copyPath, {
    label: 'Copy s3:// Path',
    execute: rowAction('copy')
  });
  commands.addCommand(CommandIDs.remove, {
    label: 'Delete…',
    execute: rowAction('delete')
  });

  app.contextMenu.addItem({ command: CommandIDs.download, selector: OBJECT_SELECTOR, rank: 1 });
  app.contextMenu.addItem({ command: CommandIDs.copyPath, selector: ROW_SELECTOR, rank: 2 });
  app.contextMenu.addItem({ command: CommandIDs.insertSnippet, selector: OBJECT_SELECTOR, rank: 3 });
  app.contextMenu.addItem({ command: CommandIDs.remove, selector: '#odh-bucket-browser .odh-row:not([data-bucket])', rank: 4 });

  if (palette) {
    const category = 'Buckets';
    for (const command of [CommandIDs.open, CommandIDs.refresh, CommandIDs.insertSnippet]) {
      palette.addItem({ command, category });
    }
  }
}
