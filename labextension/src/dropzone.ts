/** Native file drag-and-drop onto a node (files from the desktop, folders included). */
import { errorMessage } from './handler';
import { filesFromDataTransfer, IFileToUpload } from './upload';

export interface IDropZoneOptions {
  /** Whether a drop would be accepted now (else the drop shows `refusal`). */
  canDrop: () => boolean;
  refusal: string;
  onFiles: (files: IFileToUpload[]) => Promise<void>;
  onError: (message: string) => void;
}

/** While files are dragged over `node` it gets the class `odh-drop-target`. */
export function installDropZone(node: HTMLElement, options: IDropZoneOptions): void {
  const handler = (event: DragEvent): void => {
    const dt = event.dataTransfer;
    if (!dt || !Array.from(dt.types).includes('Files')) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    if (event.type === 'dragenter' || event.type === 'dragover') {
      dt.dropEffect = options.canDrop() ? 'copy' : 'none';
      node.classList.add('odh-drop-target');
    } else if (event.type === 'dragleave') {
      if (!node.contains(event.relatedTarget as Node | null)) {
        node.classList.remove('odh-drop-target');
      }
    } else if (event.type === 'drop') {
      node.classList.remove('odh-drop-target');
      if (!options.canDrop()) {
        options.onError(options.refusal);
        return;
      }
      // The DataTransfer items must be read now, synchronously in the drop handler.
      void filesFromDataTransfer(dt)
        .then(files => options.onFiles(files))
        .catch(error => options.onError(errorMessage(error)));
    }
  };
  for (const type of ['dragenter', 'dragover', 'dragleave', 'drop']) {
    node.addEventListener(type, handler as EventListener);
  }
}
