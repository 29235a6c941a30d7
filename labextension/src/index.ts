/**
 * jupyter_mlx's JupyterLab extension: a left-sidebar panel listing the project's runs, and a
 * compare view for two of them (toolbar button, command palette, Accel+Enter in the panel).
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { CommandToolbarButton, runIcon } from '@jupyterlab/ui-components';

import { CompareView, compareKey, createCompareWidget } from './compareView';
import { openLaunchDialog } from './launchDialog';
import { RunsPanel } from './panel';
import { comparePair } from './selection';

/** The extension's commands. */
export namespace CommandIDs {
  export const compare = 'jupyter-mlx:compare';
  export const runWithParameters = 'jupyter-mlx:run-with-parameters';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlx:plugin',
  description: 'A sidebar listing the versioned runs of the project’s notebooks, and a compare view.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): void => {
    const serverSettings = app.serviceManager.serverSettings;
    const panel = new RunsPanel({ serverSettings });
    const open = new Map<string, MainAreaWidget<CompareView>>();

    app.commands.addCommand(CommandIDs.compare, {
      label: 'Compare Selected Runs',
      caption: 'Compare the two runs selected in the Runs panel (older as A, newer as B)',
      isEnabled: () => comparePair(panel.selectedRuns) !== null,
      execute: () => {
        const pair = comparePair(panel.selectedRuns);
        if (!pair) {
          return;
        }
        const key = compareKey(pair.a.ref, pair.b.ref);
        const existing = open.get(key);
        if (existing && !existing.isDisposed) {
          shell.activateById(existing.id);
          return;
        }
        const widget = createCompareWidget({
          a: { ref: pair.a.ref, runId: pair.a.id },
          b: { ref: pair.b.ref, runId: pair.b.id },
          serverSettings
        });
        open.set(key, widget);
        widget.disposed.connect(() => open.delete(key));
        shell.add(widget, 'main');
        shell.activateById(widget.id);
        void widget.content.load();
      }
    });
    app.commands.addKeyBinding({
      command: CommandIDs.compare,
      keys: ['Accel Enter'],
      selector: '.jp-mlx-panel'
    });
    palette?.addItem({ command: CommandIDs.compare, category: 'Notebook Runs' });
    panel.selectionChanged.connect(() =>
      app.commands.notifyCommandChanged(CommandIDs.compare)
    );

    const compare = new CommandToolbarButton({
      commands: app.commands,
      id: CommandIDs.compare,
      label: 'Compare',
      caption: 'Compare the two selected runs (select with Ctrl/Cmd-click or the checkboxes)'
    });
    compare.addClass('jp-mlx-compare-button');
    panel.toolbar.insertBefore('refresh', 'compare', compare);

    /** The notebook to launch: the argument, the current notebook, or the panel's filter. */
    const launchTarget = (args: Record<string, unknown>): string => {
      if (typeof args.notebook === 'string' && args.notebook) {
        return args.notebook;
      }
      const current = shell.currentWidget as { context?: { path?: unknown } } | null;
      const path = current?.context?.path;
      if (typeof path === 'string' && path.endsWith('.ipynb')) {
        return path;
      }
      return panel.selectedNotebook;
    };
    app.commands.addCommand(CommandIDs.runWithParameters, {
      label: 'Run with Parameters…',
      icon: args => (args.isPalette ? undefined : runIcon),
      caption: 'Run the current notebook (or the one chosen in the Runs panel) with parameters, or sweep them',
      isEnabled: args => launchTarget(args) !== '',
      execute: args => openLaunchDialog(launchTarget(args), serverSettings)
    });
    palette?.addItem({ command: CommandIDs.runWithParameters, category: 'Notebook Runs' });
    const updateLaunch = () => app.commands.notifyCommandChanged(CommandIDs.runWithParameters);
    shell.currentChanged.connect(updateLaunch);
    panel.notebookChanged.connect(updateLaunch);
    const launch = new CommandToolbarButton({
      commands: app.commands,
      id: CommandIDs.runWithParameters,
      icon: runIcon,
      label: '',
      caption: 'Run the current or selected notebook with parameters'
    });
    launch.addClass('jp-mlx-launch-button');
    panel.toolbar.insertBefore('compare', 'run-with-parameters', launch);

    shell.add(panel, 'left', { rank: 800 });
    restorer?.add(panel, panel.id);
  }
};

export default plugin;
