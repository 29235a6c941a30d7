/**
 * The sidebar icon: a stack of notebook versions with a run (play) mark.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M7 2h12a2 2 0 0 1 2 2v13h-1.6V3.6H7z"/>
  <path class="jp-icon3" fill="#616161" fill-rule="evenodd"
    d="M4 6h12a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2zm4 4v8l6.5-4z"/>
</svg>`;

export const runsIcon = new LabIcon({ name: 'jupyter-mlx:runs', svgstr: svg });
