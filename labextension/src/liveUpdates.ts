/**
 * A live subscription to `GET /mlx/events`: reconnects with back-off when the stream drops,
 * until stopped.
 */
import type { ServerConnection } from '@jupyterlab/services';

import { streamEvents } from './api';
import { backoffDelay, EventStreamParser, MLXEvent, toMLXEvent } from './eventStream';

export class LiveUpdates {
  constructor(
    /** Called with each `run` and `progress` event. */
    private readonly _onEvent: (event: MLXEvent) => void,
    /** Called each time the stream (re)connects, e.g. to catch up on missed changes. */
    private readonly _onConnect: () => void,
    private readonly _settings?: ServerConnection.ISettings
  ) {}

  /** Whether the subscription is started. */
  get active(): boolean {
    return this._abort !== null;
  }

  /** Connect (no-op when started). */
  start(): void {
    if (this._abort) {
      return;
    }
    const abort = new AbortController();
    this._abort = abort;
    void this._loop(abort.signal);
  }

  /** Close the stream and cancel any pending reconnect. */
  stop(): void {
    this._abort?.abort();
    this._abort = null;
    if (this._retry !== null) {
      window.clearTimeout(this._retry.timer);
      this._retry.resolve();
      this._retry = null;
    }
  }

  private async _loop(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      const parser = new EventStreamParser();
      let connected = false;
      try {
        await streamEvents(
          text => {
            if (!connected) {
              connected = true;
              attempt = 0;
              this._onConnect();
            }
            for (const raw of parser.push(text)) {
              const event = toMLXEvent(raw);
              if (event) {
                this._onEvent(event);
              }
            }
          },
          signal,
          this._settings
        );
      } catch {
        // dropped or refused: retry below
      }
      if (signal.aborted) {
        return;
      }
      await this._wait(backoffDelay(attempt++));
    }
  }

  private _wait(ms: number): Promise<void> {
    return new Promise(resolve => {
      const timer = window.setTimeout(() => {
        this._retry = null;
        resolve();
      }, ms);
      this._retry = { timer, resolve };
    });
  }

  private _abort: AbortController | null = null;
  private _retry: { timer: number; resolve: () => void } | null = null;
}
