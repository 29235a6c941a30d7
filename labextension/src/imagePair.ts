/**
 * An image output of A and B with a mode switch: side by side, the change mask, or an
 * onion skin (B over A, its opacity on a slider).
 */
import { button, h } from './dom';

export type ImageMode = 'side' | 'mask' | 'onion';

const MODES: [ImageMode, string][] = [
  ['side', 'Side by side'],
  ['mask', 'Change mask'],
  ['onion', 'Onion skin']
];

export interface ImagePairOptions {
  /** Data URIs; null when the image is missing on that side. */
  a: string | null;
  b: string | null;
  /** The server's change mask (A faded, changed pixels red), a data URI. */
  mask: string | null;
  mode?: ImageMode;
}

/** The image pair's element; its `data-mode` says the mode shown. */
export function renderImagePair(options: ImagePairOptions): HTMLElement {
  const root = h('div', 'jp-mlx-images');
  const switcher = h('div', 'jp-mlx-image-modes');
  switcher.setAttribute('role', 'group');
  switcher.setAttribute('aria-label', 'Image comparison mode');
  const body = h('div', 'jp-mlx-image-body');
  const show = (mode: ImageMode): void => {
    root.dataset.mode = mode;
    switcher.querySelectorAll<HTMLButtonElement>('button').forEach(node => {
      node.setAttribute('aria-pressed', String(node.dataset.mode === mode));
    });
    body.replaceChildren(...modeContent(mode, options));
  };
  for (const [mode, label] of MODES) {
    if ((mode === 'mask' && !options.mask) || (mode === 'onion' && !(options.a && options.b))) {
      continue;
    }
    const node = button(label, 'jp-mlx-image-mode', () => show(mode));
    node.dataset.mode = mode;
    switcher.append(node);
  }
  root.append(switcher, body);
  show(options.mode ?? 'side');
  return root;
}

function modeContent(mode: ImageMode, options: ImagePairOptions): HTMLElement[] {
  if (mode === 'mask' && options.mask) {
    return [
      figure('Changes (red) over A', options.mask, 'jp-mlx-image-mask'),
      figure('B', options.b, 'jp-mlx-image-b')
    ];
  }
  if (mode === 'onion' && options.a && options.b) {
    return [onionSkin(options.a, options.b)];
  }
  return [figure('A', options.a, 'jp-mlx-image-a'), figure('B', options.b, 'jp-mlx-image-b')];
}

function figure(caption: string, src: string | null, className: string): HTMLElement {
  const content = src ? image(src, caption) : h('div', 'jp-mlx-missing', 'no image');
  return h('figure', `jp-mlx-figure ${className}`, content, h('figcaption', '', caption));
}

function image(src: string, alt: string): HTMLImageElement {
  const node = h('img');
  node.src = src;
  node.alt = alt;
  return node;
}

function onionSkin(a: string, b: string): HTMLElement {
  const top = image(b, 'B');
  top.className = 'jp-mlx-onion-top';
  const stack = h('div', 'jp-mlx-onion-stack', image(a, 'A'), top);
  const slider = h('input', 'jp-mlx-onion-slider');
  slider.type = 'range';
  slider.min = '0';
  slider.max = '100';
  slider.value = '50';
  slider.setAttribute('aria-label', 'Opacity of B over A');
  const fade = (): void => {
    top.style.opacity = String(Number(slider.value) / 100);
  };
  slider.addEventListener('input', fade);
  fade();
  const controls = h('label', 'jp-mlx-onion-controls', 'A', slider, 'B');
  return h('figure', 'jp-mlx-figure jp-mlx-onion', stack, controls);
}
