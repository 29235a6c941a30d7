/**
 * A tiny DOM builder for the compare view: an element, its class and its children.
 */

export type Child = Node | string | null | undefined | false;

/** `<tag class="className">...children</tag>`; null, undefined and false children are skipped. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child);
    }
  }
  return node;
}

/** A judgement (or status) as a small coloured badge. */
export function badge(text: string, kind = text): HTMLElement {
  const node = h('span', `jp-mlx-badge jp-mlx-badge-${kind}`, text.replace(/_/g, ' '));
  node.dataset.judgement = kind;
  return node;
}

/** A small text button. */
export function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const node = h('button', `jp-mlx-button ${className}`, label);
  node.type = 'button';
  node.addEventListener('click', onClick);
  return node;
}
