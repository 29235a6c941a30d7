/**
 * Baseline actions in the compare view's toolbar: which run is the notebook's baseline,
 * "Approve B as Baseline" and "Check B against Baseline" (the same check `jupyter mlx check`
 * runs in CI), with the verdict and the unexpected changes in a notification.
 */
import { MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import { checkIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { approveBaseline, checkRun, getBaseline, MLXApiError } from './api';
import { describeCheck, notebookOfRef } from './baselineModel';
import { h } from './dom';

export interface BaselineToolsOptions {
  /** The run compared as B: the one to approve or check. */
  b: { ref: string; runId?: string | null };
  /** The ref compared as A (a check against it needs no second view). */
  a: string;
  serverSettings: ServerConnection.ISettings;
  /** Open the comparison of the baseline with B. */
  openComparison: (a: string, b: string) => void;
}

/** Add the baseline label and buttons to a compare widget's toolbar. */
export function addBaselineTools(widget: MainAreaWidget, options: BaselineToolsOptions): void {
  const notebook = notebookOfRef(options.b.ref);
  if (!notebook) {
    return; // B is a notebook file, not a run: nothing to approve
  }
  const settings = options.serverSettings;
  const label = new Widget({ node: h('span', 'jp-mlx-baseline-label', 'Baseline: …') });
  const show = (ref: string | null): void => {
    label.node.textContent = ref ? `Baseline: ${ref.slice(notebook.length + 1)}` : 'No baseline';
    label.node.title = ref
      ? `${ref} is the approved baseline of ${notebook}`
      : `${notebook} has no approved baseline yet`;
  };
  void getBaseline(notebook, settings).then(
    baseline => show(baseline?.ref ?? null),
    () => show(null)
  );

  const approve: ToolbarButton = new ToolbarButton({
    icon: checkIcon,
    label: 'Approve B as Baseline',
    className: 'jp-mlx-approve-baseline',
    tooltip: `Approve ${options.b.ref} as the baseline later runs of ${notebook} are checked against`,
    onClick: async () => {
      approve.pressed = false;
      try {
        const baseline = await approveBaseline(options.b.ref, '', settings);
        show(baseline.ref);
        Notification.success(`${baseline.ref} is now the baseline of ${notebook}.`, {
          autoClose: 5000
        });
      } catch (reason) {
        Notification.error(`Cannot approve ${options.b.ref}: ${message(reason)}`, {
          autoClose: false
        });
      }
    }
  });
  const check: ToolbarButton = new ToolbarButton({
    label: 'Check B against Baseline',
    className: 'jp-mlx-check-baseline',
    tooltip: `Compare ${options.b.ref} with the approved baseline of ${notebook}: does it pass?`,
    onClick: async () => {
      check.pressed = false;
      try {
        const comparison = await checkRun(options.b.ref, {}, settings);
        const baseline = comparison.a.ref;
        show(baseline); // it may have been approved elsewhere since the view opened
        const verdict = describeCheck(options.b.ref, baseline, comparison.summary);
        const actions =
          baseline === options.a
            ? []
            : [
                {
                  label: 'Compare with Baseline',
                  callback: () => options.openComparison(baseline, options.b.ref)
                }
              ];
        if (verdict.ok) {
          Notification.success(verdict.text, { autoClose: 8000, actions });
        } else {
          Notification.warning(verdict.text, { autoClose: false, actions });
        }
      } catch (reason) {
        Notification.error(`Cannot check ${options.b.ref}: ${message(reason)}`, {
          autoClose: false
        });
      }
    }
  });
  widget.toolbar.addItem('baseline-label', label);
  widget.toolbar.addItem('approve-baseline', approve);
  widget.toolbar.addItem('check-baseline', check);
}

function message(reason: unknown): string {
  return reason instanceof MLXApiError ? reason.message : String(reason);
}
