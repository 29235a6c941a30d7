/**
 * jupyter_mlx's JupyterLab extension: a left-sidebar panel listing the project's runs.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { RunsPanel } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlx:plugin',
  description: 'A sidebar listing the versioned runs of the project’s notebooks.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    restorer: ILayoutRestorer | null
  ): void => {
    const panel = new RunsPanel({
      serverSettings: app.serviceManager.serverSettings
    });
    shell.add(panel, 'left', { rank: 800 });
    restorer?.add(panel, panel.id);
  }
};

export default plugin;
