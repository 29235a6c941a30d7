/**
 * Reading one output (or a cell's source) out of an executed notebook, as something the compare
 * view can show: an image data URI, plain text, or an error line. Pure: no DOM, no HTTP.
 */
import type { NotebookContent, NotebookOutput } from './comparison';
import type { OutputLocation } from './compareModel';

export type OutputPreview =
  | { type: 'image'; src: string }
  | { type: 'text'; text: string }
  | { type: 'error'; text: string }
  | { type: 'missing'; text: string };

const IMAGE_MIMES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/svg+xml'];

/** The output at `location` of `notebook`; `missing` when either is absent. */
export function outputPreview(
  notebook: NotebookContent | null,
  location: OutputLocation | null
): OutputPreview {
  if (!location) {
    return { type: 'missing', text: 'no output on this side' };
  }
  const output = notebook?.cells[location.cell]?.outputs?.[location.output];
  if (!output) {
    return { type: 'missing', text: 'output not found in the executed notebook' };
  }
  return previewOf(output, location.mime);
}

/** The data URI of the image output at `location`, or null. */
export function imageSource(
  notebook: NotebookContent | null,
  location: OutputLocation | null
): string | null {
  const preview = outputPreview(notebook, location);
  return preview.type === 'image' ? preview.src : null;
}

/** A cell's source text, or null when the notebook or cell is absent. */
export function cellSource(notebook: NotebookContent | null, index: number | null): string | null {
  if (index === null || !notebook?.cells[index]) {
    return null;
  }
  return joinText(notebook.cells[index].source);
}

function previewOf(output: NotebookOutput, mime: string | null): OutputPreview {
  if (output.output_type === 'stream') {
    return { type: 'text', text: joinText(output.text) };
  }
  if (output.output_type === 'error') {
    return { type: 'error', text: `${output.ename ?? 'Error'}: ${output.evalue ?? ''}` };
  }
  const data = output.data ?? {};
  const image = [mime ?? '', ...IMAGE_MIMES].find(
    name => name.startsWith('image/') && typeof data[name] === 'string'
  );
  if (image) {
    return { type: 'image', src: imageUri(image, data[image] as string) };
  }
  if (data['text/plain'] !== undefined) {
    return { type: 'text', text: joinText(data['text/plain'] as string | string[]) };
  }
  const value = mime ? data[mime] : undefined;
  if (value !== undefined) {
    return { type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value, null, 1) };
  }
  return { type: 'missing', text: 'an output without a text form' };
}

/** Raster images are base64 in notebooks; SVG is markup. */
function imageUri(mime: string, value: string): string {
  if (mime === 'image/svg+xml') {
    return `data:${mime};charset=utf-8,${encodeURIComponent(value)}`;
  }
  return `data:${mime};base64,${value.replace(/\s+/g, '')}`;
}

function joinText(text: string | string[] | undefined): string {
  return Array.isArray(text) ? text.join('') : (text ?? '');
}
