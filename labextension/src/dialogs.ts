/** The dialogs of the bucket browser: names for new buckets and folders, delete confirmation. */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';

import { IRowTarget } from './dom';

/** The bucket name pattern of the API (openapi.yaml `components.parameters.bucket`). */
export const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Ask for a bucket name; null when cancelled. Throws for a name the API would refuse. */
export async function askBucketName(): Promise<string | null> {
  const result = await InputDialog.getText({
    title: 'New bucket',
    label: 'Name (3–63 characters: a–z, 0–9, "." and "-")',
    placeholder: 'my-data',
    okLabel: 'Create'
  });
  const name = (result.value ?? '').trim();
  if (!result.button.accept || !name) {
    return null;
  }
  if (!BUCKET_NAME.test(name)) {
    throw new Error(
      `"${name}" is not a valid bucket name: use 3–63 characters a–z, 0–9, "." and "-", ` +
        'starting and ending with a letter or digit.'
    );
  }
  return name;
}

/** Ask for a folder name (may contain '/' for nested folders); null when cancelled. */
export async function askFolderName(): Promise<string | null> {
  const result = await InputDialog.getText({
    title: 'New folder',
    label: 'Folder name',
    okLabel: 'Create'
  });
  const name = (result.value ?? '').trim().replace(/^\/+|\/+$/g, '');
  return result.button.accept && name ? name : null;
}

/** Confirm deleting an object or a folder with everything under it. */
export async function confirmDelete(target: IRowTarget): Promise<boolean> {
  const isFolder = target.key === undefined;
  const result = await showDialog({
    title: isFolder ? 'Delete folder' : 'Delete object',
    body: isFolder
      ? `Delete ${target.path} and everything in it? This cannot be undone.`
      : `Delete ${target.path}? This cannot be undone.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  return result.button.accept;
}
