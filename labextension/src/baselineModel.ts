/**
 * What the compare view's baseline actions say: pure functions (no DOM, no HTTP).
 */

/** `train.ipynb` of `train.ipynb@v3`; null for something that is not a run's ref. */
export function notebookOfRef(ref: string): string | null {
  const match = /^(.+)@v\d+$/.exec(ref);
  return match ? match[1] : null;
}

/** A one-line verdict of a check's summary, and up to `limit` of its unexpected changes. */
export function describeCheck(
  ref: string,
  baseline: string,
  summary: { verdict: string; unexpected: unknown[] },
  limit = 3
): { ok: boolean; text: string } {
  const unexpected = summary.unexpected.map(item =>
    typeof item === 'string' ? item : JSON.stringify(item)
  );
  if (!unexpected.length) {
    return { ok: true, text: `${ref} passes the check against the baseline ${baseline}.` };
  }
  const noun = unexpected.length === 1 ? 'unexpected change' : 'unexpected changes';
  const shown = unexpected.slice(0, limit).join('; ');
  const more = unexpected.length > limit ? ` (+${unexpected.length - limit} more)` : '';
  return {
    ok: false,
    text: `${ref} fails the check against ${baseline}: ${unexpected.length} ${noun}: ${shown}${more}`
  };
}
