/**
 * "Deploy as Endpoint…" on a notebook's code cell (cell context menu and command palette), and
 * the "Endpoints" section it adds to the jupyter_mlx sidebar.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { AccordionPanel } from '@lumino/widgets';

import { openDeployDialog } from './deployDialog';
import { cellTargets } from './deployModel';
import { EndpointsSection } from './endpointsSection';
import { EndpointTokens } from './endpointsModel';
import type { RunsPanel } from './panel';
import { IRunsPanel } from './tokens';

type CodeCell = NonNullable<INotebookTracker['activeCell']>;

export const DEPLOY_CELL = 'jupyter-mlx:deploy-cell';

/** The notebook and code cell to deploy: the one right-clicked (from the context menu), else
 * the active one. */
function targetCell(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  args: ReadonlyPartialJSONObject
): { panel: NotebookPanel; cell: CodeCell } | null {
  const panel = tracker.currentWidget;
  if (!panel || !panel.context.isReady) {
    return null;
  }
  const hit = args.fromContextMenu
    ? app.contextMenuHitTest(node => node.classList.contains('jp-CodeCell'))
    : undefined;
  const cell = hit
    ? panel.content.widgets.find(widget => widget.node === hit) ?? null
    : tracker.activeCell;
  if (!cell || cell.model.type !== 'code' || !panel.context.path.endsWith('.ipynb')) {
    return null;
  }
  return { panel, cell };
}

/** Expand section `index` of `accordion` and give it at least half of the height. */
function showHalf(accordion: AccordionPanel, index: number): void {
  accordion.expand(index);
  const sizes = accordion.relativeSizes();
  const own = sizes[index] ?? 0;
  if (index < 0 || own >= 0.45 || own >= 1) {
    return;
  }
  const scale = 0.5 / (1 - own);
  accordion.setRelativeSizes(sizes.map((size, i) => (i === index ? 0.5 : size * scale)));
}

export const deployPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlx:deploy',
  description: 'Deploy a notebook function as an HTTP endpoint; the Endpoints section of the sidebar.',
  autoStart: true,
  requires: [IRunsPanel, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    runsPanel: RunsPanel,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ): void => {
    const serverSettings = app.serviceManager.serverSettings;
    const tokens = new EndpointTokens();
    const section = new EndpointsSection({ tokens, serverSettings });
    runsPanel.addWidget(section);
    // Collapsed while there is no endpoint: the runs keep the room.
    const accordion = runsPanel.content;
    if (accordion instanceof AccordionPanel) {
      const index = accordion.widgets.indexOf(section);
      accordion.collapse(index);
      void section.refresh().then(() => {
        if (section.count > 0) {
          accordion.expand(index);
        }
      });
    }

    app.commands.addCommand(DEPLOY_CELL, {
      label: 'Deploy as Endpoint…',
      caption:
        'Serve a function of this code cell (or the notebook’s annotated cell routes) ' +
        'from a recorded run, as an HTTP endpoint',
      isEnabled: args => targetCell(app, tracker, args) !== null,
      execute: async args => {
        const target = targetCell(app, tracker, args);
        if (!target) {
          return;
        }
        const source = target.cell.model.sharedModel.getSource();
        const deployed = await openDeployDialog(
          { notebook: target.panel.context.path, source },
          cellTargets(source),
          tokens,
          serverSettings,
          (name, work) => section.track(name, work)
        );
        if (deployed) {
          app.shell.activateById(runsPanel.id);
          if (accordion instanceof AccordionPanel) {
            showHalf(accordion, accordion.widgets.indexOf(section));
          }
          void section.refresh();
        }
      }
    });
    app.contextMenu.addItem({
      command: DEPLOY_CELL,
      selector: '.jp-Notebook .jp-CodeCell',
      rank: 60,
      args: { fromContextMenu: true }
    });
    palette?.addItem({ command: DEPLOY_CELL, category: 'Notebook Runs' });
    const changed = (): void => app.commands.notifyCommandChanged(DEPLOY_CELL);
    tracker.currentChanged.connect(changed);
    tracker.activeCellChanged.connect(changed);
  }
};
