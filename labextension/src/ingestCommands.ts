/** Kafka ingestion: the Ingestions panel, "New ingestion…" (palette, panel button) and the object viewer. */
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, showErrorMessage } from '@jupyterlab/apputils';

import { errorMessage } from './handler';
import { ingestIcon } from './icons';
import { createIngestion } from './ingestApi';
import { askIngestion } from './ingestDialog';
import { IngestedObjectView, IngestionsPanel } from './ingestions';

export namespace IngestCommandIDs {
  export const create = 'odh:new-ingestion';
  export const open = 'odh:open-ingestions';
  export const refresh = 'odh:refresh-ingestions';
}

export interface IIngestOptions {
  app: JupyterFrontEnd;
  palette: ICommandPalette | null;
  restorer: ILayoutRestorer | null;
}

export function activateIngestions(options: IIngestOptions): IngestionsPanel {
  const { app, palette, restorer } = options;
  const { commands, shell } = app;
  const panel = new IngestionsPanel({
    create: () => commands.execute(IngestCommandIDs.create),
    open: (bucket, key) => {
      const view = new IngestedObjectView(bucket, key);
      shell.add(view, 'main', { mode: 'split-right' });
      shell.activateById(view.id);
    }
  });
  shell.add(panel, 'left', { rank: 270 });
  restorer?.add(panel, 'odh-ingestions-panel');

  commands.addCommand(IngestCommandIDs.create, {
    label: 'New Ingestion…',
    caption: 'Stream a Kafka topic into one of your buckets (every record exactly once)',
    icon: args => (args.isPalette ? undefined : ingestIcon),
    execute: async args => {
      try {
        const settings = await askIngestion({
          topic: typeof args.topic === 'string' ? args.topic : undefined,
          bucket: typeof args.bucket === 'string' ? args.bucket : undefined
        });
        if (!settings) {
          return;
        }
        const created = await createIngestion(settings);
        shell.activateById(panel.id);
        panel.showStatus(`Started ${created.name}: ${created.topic} → s3://${created.bucket}/${created.prefix}`);
        await panel.refresh(true);
      } catch (error) {
        await showErrorMessage('New ingestion', errorMessage(error));
      }
    }
  });
  commands.addCommand(IngestCommandIDs.open, {
    label: 'Open Ingestions',
    caption: 'Show your Kafka ingestions',
    icon: args => (args.isPalette ? undefined : ingestIcon),
    execute: () => shell.activateById(panel.id)
  });
  commands.addCommand(IngestCommandIDs.refresh, {
    label: 'Refresh Ingestions',
    execute: () => panel.refresh(true)
  });
  if (palette) {
    for (const command of Object.values(IngestCommandIDs)) {
      palette.addItem({ command, category: 'Kafka Ingestion', args: { isPalette: true } });
    }
  }
  return panel;
}
