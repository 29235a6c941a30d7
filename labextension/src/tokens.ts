/**
 * Tokens other plugins use to reach jupyter_mlx's pieces.
 */
import { Token } from '@lumino/coreutils';

import type { RunsPanel } from './panel';

/** The jupyter_mlx sidebar: add a section (an accordion pane) with `panel.addWidget(widget)`. */
export const IRunsPanel = new Token<RunsPanel>(
  'jupyter-mlx:IRunsPanel',
  'The jupyter_mlx sidebar, to add sections (such as Endpoints) to it.'
);
