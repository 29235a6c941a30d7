/**
 * Server-sent events, parsed incrementally (pure: no DOM, no HTTP), and the typed events of
 * `GET /mlx/events`.
 */
import type { RunRecord } from './api';

/** One dispatched server-sent event. */
export interface RawEvent {
  /** The `event:` field; `message` when absent. */
  type: string;
  /** The `data:` lines, joined by newlines. */
  data: string;
}

/** Progress of a running run: cell `cell` (1-based) of `cells`. */
export interface RunProgress {
  run_id: string;
  cell: number;
  cells: number;
  elapsed?: number;
}

/** An event of `GET /mlx/events`. */
export type MLXEvent =
  | { type: 'run'; run: RunRecord }
  | { type: 'progress'; progress: RunProgress };

/**
 * Parses a `text/event-stream` body fed chunk by chunk (chunks may split lines anywhere,
 * also between `\r` and `\n`); comments and unknown fields are ignored.
 */
export class EventStreamParser {
  /** Feed the next chunk; returns the events it completed. */
  push(chunk: string): RawEvent[] {
    const events: RawEvent[] = [];
    let text = this._rest + chunk;
    if (this._skipLF && text.startsWith('\n')) {
      text = text.slice(1);
    }
    this._skipLF = false;
    let start = 0;
    for (;;) {
      const match = /\r\n|\r|\n/g;
      match.lastIndex = start;
      const found = match.exec(text);
      if (!found) {
        break;
      }
      if (found[0] === '\r' && found.index === text.length - 1) {
        this._skipLF = true; // its `\n` may come with the next chunk
      }
      this._line(text.slice(start, found.index), events);
      start = found.index + found[0].length;
    }
    this._rest = text.slice(start);
    return events;
  }

  private _line(line: string, events: RawEvent[]): void {
    if (line === '') {
      if (this._data !== null) {
        events.push({ type: this._type || 'message', data: this._data });
      }
      this._type = '';
      this._data = null;
      return;
    }
    if (line.startsWith(':')) {
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this._type = value;
    } else if (field === 'data') {
      this._data = this._data === null ? value : `${this._data}\n${value}`;
    }
  }

  private _rest = '';
  private _skipLF = false;
  private _type = '';
  private _data: string | null = null;
}

/** The typed `run` or `progress` event, or null for other types and malformed data. */
export function toMLXEvent(event: RawEvent): MLXEvent | null {
  let data: unknown;
  try {
    data = JSON.parse(event.data);
  } catch {
    return null;
  }
  if (typeof data !== 'object' || data === null) {
    return null;
  }
  const body = data as Record<string, unknown>;
  if (event.type === 'run' && typeof body.id === 'string' && typeof body.status === 'string') {
    return { type: 'run', run: data as RunRecord };
  }
  if (
    event.type === 'progress' &&
    typeof body.run_id === 'string' &&
    typeof body.cell === 'number' &&
    typeof body.cells === 'number'
  ) {
    return { type: 'progress', progress: data as RunProgress };
  }
  return null;
}

/** Milliseconds to wait before reconnect attempt `attempt` (0-based): doubling, capped. */
export function backoffDelay(attempt: number, base = 1000, max = 30000): number {
  return Math.min(max, base * 2 ** Math.max(0, attempt));
}
