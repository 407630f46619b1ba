/**
 * Code snippets for an object, from the templates in the settings (`snippets`).
 *
 * Placeholders `{bucket}`, `{key}` and `{path}` (`s3://bucket/key`) expand to *quoted Python
 * string literals*, e.g. `{key}` -> `"data/my file.csv"`, so any key (quotes, backslashes,
 * newlines, non-ASCII) gives valid Python. Templates therefore never put quotes around them.
 */
import { INotebookTracker } from '@jupyterlab/notebook';

export interface ISnippet {
  name: string;
  template: string;
}

const PLACEHOLDER = /\{(bucket|key|path)\}/g;

/**
 * A double-quoted Python string literal for `value`. Escapes the backslash, the quote,
 * control characters, line/paragraph separators and lone surrogates; other characters
 * (including non-ASCII) are kept as they are, which Python 3 source allows.
 */
export function pyStr(value: string): string {
  let out = '"';
  for (const ch of value) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '\\') {
      out += '\\\\';
    } else if (ch === '"') {
      out += '\\"';
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
      out += '\\x' + cp.toString(16).padStart(2, '0');
    } else if (
      cp === 0x2028 ||
      cp === 0x2029 ||
      cp === 0xfeff ||
      (cp >= 0xd800 && cp <= 0xdfff)
    ) {
      out += '\\u' + cp.toString(16).padStart(4, '0');
    } else {
      out += ch;
    }
  }
  return out + '"';
}

/** Expand a template for one object, in a single pass (a key containing `{path}` stays as is). */
export function renderSnippet(template: string, bucket: string, key: string): string {
  const values: Record<string, string> = {
    bucket: pyStr(bucket),
    key: pyStr(key),
    path: pyStr(`s3://${bucket}/${key}`)
  };
  return template.replace(PLACEHOLDER, (_match, name: string) => values[name]);
}

/** The valid snippets of a settings value (ignores malformed entries). */
export function parseSnippets(value: unknown): ISnippet[] {
  if (!Array.isArray(value)) {
    return [];
  }
  return value.filter(
    (s): s is ISnippet =>
      !!s && typeof s.name === 'string' && typeof s.template === 'string' && !!s.name
  );
}

/**
 * Insert `source` as a new code cell below the active cell of the current notebook
 * and make it the active cell. Throws when no notebook is open.
 */
export function insertCodeCell(tracker: INotebookTracker, source: string): void {
  const panel = tracker.currentWidget;
  const notebook = panel?.content;
  const model = notebook?.model;
  if (!panel || !notebook || !model) {
    throw new Error('Open a notebook first: the snippet goes below its active cell.');
  }
  const index = model.cells.length ? notebook.activeCellIndex + 1 : 0;
  model.sharedModel.insertCell(index, { cell_type: 'code', source });
  notebook.activeCellIndex = index;
  notebook.deselectAll();
  const cell = notebook.activeCell;
  if (cell) {
    void notebook.scrollToItem(index);
  }
}
