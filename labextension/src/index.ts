/**
 * jupyter_mlx's JupyterLab extension: a left-sidebar panel listing the project's runs (filter,
 * sort, virtualized), a compare view for two of them with baseline approval and check, the
 * metrics of several, a run's executed notebook read-only, and "Run with Parameters" (from the
 * panel, the palette, or the notebook toolbar).
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, IThemeManager, MainAreaWidget } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { CommandToolbarButton, runIcon, tableRowsIcon } from '@jupyterlab/ui-components';
import type { Widget } from '@lumino/widgets';

import type { RunRecord } from './api';
import { addBaselineTools } from './baselineTools';
import { compareKey, createCompareWidget } from './compareView';
import { deployPlugin } from './deployPlugin';
import { openLaunchDialog } from './launchDialog';
import { restorableParameters } from './launchModel';
import { createMetricsWidget, MetricsView } from './metricsView';
import { RunsPanel } from './panel';
import { createRunNotebookWidget } from './runNotebookView';
import { comparePair } from './selection';
import { IRunsPanel } from './tokens';

/** The extension's commands. */
export namespace CommandIDs {
  export const compare = 'jupyter-mlx:compare';
  export const runWithParameters = 'jupyter-mlx:run-with-parameters';
  export const metrics = 'jupyter-mlx:metrics';
  export const openRun = 'jupyter-mlx:open-run';
  export const restoreParameters = 'jupyter-mlx:restore-parameters';
}

const PLUGIN_ID = 'jupyter-mlx:plugin';
const CATEGORY = 'Notebook Runs';

const plugin: JupyterFrontEndPlugin<RunsPanel> = {
  id: PLUGIN_ID,
  description: 'A sidebar listing the versioned runs of the project’s notebooks, and a compare view.',
  autoStart: true,
  requires: [ILabShell],
  provides: IRunsPanel,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    IRenderMimeRegistry,
    IEditorServices,
    IThemeManager
  ],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    rendermime: IRenderMimeRegistry | null,
    editorServices: IEditorServices | null,
    themeManager: IThemeManager | null
  ): RunsPanel => {
    const serverSettings = app.serviceManager.serverSettings;
    const panel = new RunsPanel({ serverSettings });
    const { commands } = app;
    const opened = new Map<string, MainAreaWidget>();
    let followCurrent = true;

    /** Show a main-area widget once per key: activate it when already open. */
    const openOnce = (key: string, create: () => MainAreaWidget, load: (widget: MainAreaWidget) => void) => {
      const existing = opened.get(key);
      if (existing && !existing.isDisposed) {
        shell.activateById(existing.id);
        return;
      }
      const widget = create();
      opened.set(key, widget);
      widget.disposed.connect(() => opened.delete(key));
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      load(widget);
    };

    const openComparison = (a: { ref: string; runId?: string | null }, b: { ref: string; runId?: string | null }) =>
      openOnce(
        `compare:${compareKey(a.ref, b.ref)}`,
        () => {
          const widget = createCompareWidget({ a, b, serverSettings });
          addBaselineTools(widget, {
            a: a.ref,
            b,
            serverSettings,
            openComparison: (baseline, run) => openComparison({ ref: baseline }, { ref: run })
          });
          return widget;
        },
        widget => void (widget.content as ReturnType<typeof createCompareWidget>['content']).load()
      );

    /** The run a command acts on: its `runId` argument, the run right-clicked, or the selection's first. */
    const targetRun = (args: Record<string, unknown>): RunRecord | undefined => {
      if (typeof args.runId === 'string') {
        return panel.runs.runById(args.runId);
      }
      const node = app.contextMenuHitTest(element => element.classList.contains('jp-mlx-run'));
      return panel.runs.runOf(node ?? null) ?? panel.selectedRuns[0];
    };

    commands.addCommand(CommandIDs.compare, {
      label: 'Compare Selected Runs',
      caption: 'Compare the two runs selected in the Runs panel (older as A, newer as B)',
      isEnabled: () => comparePair(panel.selectedRuns) !== null,
      execute: () => {
        const pair = comparePair(panel.selectedRuns);
        if (pair) {
          openComparison({ ref: pair.a.ref, runId: pair.a.id }, { ref: pair.b.ref, runId: pair.b.id });
        }
      }
    });
    commands.addKeyBinding({ command: CommandIDs.compare, keys: ['Accel Enter'], selector: '.jp-mlx-panel' });

    const metricsViews = new Set<MetricsView>();
    commands.addCommand(CommandIDs.metrics, {
      label: 'Metrics of Selected Runs',
      icon: args => (args.isPalette ? undefined : tableRowsIcon),
      caption: 'A table and charts of the metrics of the runs selected in the Runs panel (two or more)',
      isEnabled: () => panel.selectedRuns.length >= 2,
      execute: () => {
        const refs = panel.selectedRuns.map(run => run.ref);
        openOnce(
          `metrics:${refs.join(',')}`,
          () => createMetricsWidget({ runs: refs, serverSettings }),
          widget => {
            const view = widget.content as MetricsView;
            metricsViews.add(view);
            view.disposed.connect(() => metricsViews.delete(view));
            void view.load();
          }
        );
      }
    });
    commands.addKeyBinding({ command: CommandIDs.metrics, keys: ['Accel Shift M'], selector: '.jp-mlx-panel' });
    themeManager?.themeChanged.connect(() => metricsViews.forEach(view => void view.refreshCharts()));

    commands.addCommand(CommandIDs.openRun, {
      label: args => (args.isPalette ? 'Open Executed Notebook of Selected Run' : 'Open Executed Notebook'),
      caption: 'Open the run’s executed notebook, read-only (at the failing cell for a failed run)',
      isEnabled: args => !!rendermime && !!editorServices && targetRun(args) !== undefined,
      execute: args => {
        const run = targetRun(args);
        if (!run || !rendermime || !editorServices) {
          return;
        }
        const cell = typeof args.cell === 'number' ? args.cell : run.error?.cell_index ?? null;
        openOnce(
          `run:${run.id}`,
          () =>
            createRunNotebookWidget({
              run,
              cell,
              rendermime,
              editorServices,
              serverSettings,
              onRestore: restored => void commands.execute(CommandIDs.restoreParameters, { runId: restored.id })
            }),
          widget => void (widget.content as ReturnType<typeof createRunNotebookWidget>['content']).load()
        );
      }
    });
    panel.runs.openRequested.connect((_, { run, cell }) =>
      void commands.execute(CommandIDs.openRun, { runId: run.id, cell })
    );

    commands.addCommand(CommandIDs.restoreParameters, {
      label: 'Restore Parameters…',
      caption: 'Open "Run with Parameters" filled with this run’s parameters',
      isEnabled: args => targetRun(args) !== undefined,
      execute: args => {
        const run = targetRun(args);
        if (run) {
          return openLaunchDialog(run.notebook, serverSettings, {
            parameters: restorableParameters(run),
            from: run.ref
          });
        }
      }
    });

    /** The notebook to launch: the argument, the current notebook, or the panel's filter. */
    const launchTarget = (args: Record<string, unknown>): string => {
      if (typeof args.notebook === 'string' && args.notebook) {
        return args.notebook;
      }
      return currentNotebook() ?? panel.selectedNotebook;
    };
    const currentNotebook = (): string | null => {
      const current = shell.currentWidget as { context?: { path?: unknown } } | null;
      const path = current?.context?.path;
      return typeof path === 'string' && path.endsWith('.ipynb') ? path : null;
    };
    commands.addCommand(CommandIDs.runWithParameters, {
      label: 'Run with Parameters…',
      icon: args => (args.isPalette ? undefined : runIcon),
      caption: 'Run the current notebook (or the one chosen in the Runs panel) with parameters, or sweep them',
      isEnabled: args => launchTarget(args) !== '',
      execute: args => openLaunchDialog(launchTarget(args), serverSettings)
    });

    for (const command of [CommandIDs.compare, CommandIDs.metrics, CommandIDs.runWithParameters, CommandIDs.openRun]) {
      palette?.addItem({ command, category: CATEGORY });
    }
    app.contextMenu.addItem({ command: CommandIDs.openRun, selector: '.jp-mlx-run', rank: 1 });
    app.contextMenu.addItem({ command: CommandIDs.restoreParameters, selector: '.jp-mlx-run', rank: 2 });
    app.contextMenu.addItem({ type: 'separator', selector: '.jp-mlx-run', rank: 3 });
    app.contextMenu.addItem({ command: CommandIDs.compare, selector: '.jp-mlx-run', rank: 4 });
    app.contextMenu.addItem({ command: CommandIDs.metrics, selector: '.jp-mlx-run', rank: 5 });
    // the ⋯ button of a row opens the same menu
    panel.node.addEventListener('click', event => {
      if ((event.target as HTMLElement).closest('.jp-mlx-run-more')) {
        app.contextMenu.open(event);
        event.stopPropagation();
      }
    });

    const updateCommands = () => {
      for (const command of Object.values(CommandIDs)) {
        commands.notifyCommandChanged(command);
      }
    };
    panel.selectionChanged.connect(updateCommands);
    panel.notebookChanged.connect(updateCommands);
    shell.currentChanged.connect(() => {
      updateCommands();
      const notebook = currentNotebook();
      if (followCurrent && notebook) {
        panel.showNotebook(notebook);
      }
    });

    const toolbarButton = (id: string, label: string, caption: string, className: string, icon?: typeof runIcon): Widget => {
      const button = new CommandToolbarButton({ commands, id, label, caption, icon });
      button.addClass(className);
      return button;
    };
    panel.toolbar.insertBefore(
      'refresh',
      'compare',
      toolbarButton(CommandIDs.compare, 'Compare', 'Compare the two selected runs (select with Ctrl/Cmd-click or the checkboxes)', 'jp-mlx-compare-button')
    );
    panel.toolbar.insertBefore(
      'refresh',
      'metrics',
      toolbarButton(CommandIDs.metrics, '', 'A table and charts of the selected runs’ metrics (select two or more)', 'jp-mlx-metrics-button', tableRowsIcon)
    );
    panel.toolbar.insertBefore(
      'compare',
      'run-with-parameters',
      toolbarButton(CommandIDs.runWithParameters, '', 'Run the current or selected notebook with parameters', 'jp-mlx-launch-button', runIcon)
    );

    if (settingRegistry) {
      void settingRegistry.load(PLUGIN_ID).then(
        settings => {
          const apply = () => {
            followCurrent = settings.get('followCurrentNotebook').composite as boolean;
            panel.configure({
              refreshInterval: settings.get('refreshInterval').composite as number,
              pageSize: settings.get('pageSize').composite as number,
              metricsInRow: settings.get('metricsInRow').composite as number
            });
          };
          apply();
          settings.changed.connect(apply);
        },
        reason => console.warn('jupyter_mlx: cannot load the settings', reason)
      );
    }

    shell.add(panel, 'left', { rank: 800 });
    restorer?.add(panel, panel.id);
    return panel;
  }
};

const plugins: JupyterFrontEndPlugin<any>[] = [plugin, deployPlugin];
export default plugins;
