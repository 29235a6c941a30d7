/**
 * A dialog whose accept button submits its form and closes only once that succeeded: a failure
 * (the server's message, shown by the form) keeps it open for another try.
 */
import { Dialog } from '@jupyterlab/apputils';
import type { Widget } from '@lumino/widgets';

/** A form body: `submit` answers what it made, or null/false after showing why it could not. */
export interface ISubmittable<T> extends Widget {
  submit(): Promise<T | null | false>;
}

export class SubmitDialog<T> extends Dialog<void> {
  constructor(options: SubmitDialog.IOptions<T>) {
    super({
      title: options.title,
      body: options.body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: options.accept })],
      focusNodeSelector: options.focus
    });
    this._form = options.body;
    this.addClass(options.className);
  }

  /** What the form made, or null when the dialog was cancelled. */
  get submitted(): T | null {
    return this._submitted;
  }

  resolve(index?: number): void {
    if (index === 0) {
      super.resolve(index);
      return;
    }
    if (this._busy) {
      return;
    }
    this._busy = true;
    this.addClass('jp-mlx-busy');
    void this._form.submit().then(made => {
      this._busy = false;
      this.removeClass('jp-mlx-busy');
      if (made && !this.isDisposed) {
        this._submitted = made;
        super.resolve(1);
      }
    });
  }

  private _form: ISubmittable<T>;
  private _busy = false;
  private _submitted: T | null = null;
}

export namespace SubmitDialog {
  export interface IOptions<T> {
    title: string;
    body: ISubmittable<T>;
    /** The accept button's label. */
    accept: string;
    /** The element focused first. */
    focus: string;
    className: string;
  }
}
