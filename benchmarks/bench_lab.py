"""JupyterLab in a real Chromium: the runs panel opens with 10,000 runs in under 1 s, the compare
view of the benchmark notebook pair is interactive in under 2 s (issue 6).

Two projects, each served by its own real JupyterLab on 127.0.0.1, driven by one headless
Chromium (Playwright), every figure measured in the page (``performance.now()``) and compared
with an anchor of the same run, in interleaved rounds (the order rotated each round):
- panel open: a fresh page at a workspace of its own; from the press on the sidebar tab to the
  first rows shown with the count label saying "10000 runs", then a main-thread probe (a
  ``requestAnimationFrame`` + ``setTimeout(0)`` round trip under 50 ms). Anchor: the same panel
  on a project of 10 runs (a ratio near 1: the cost does not grow with the store). Then, in the
  same page, the list scrolled to the middle and to the end: until the rows in view are loaded.
- compare view: the two runs of the benchmark notebook pair (``bench_compare.make_pair``: 60
  cells, 30 PNGs, 9 outputs and 2 sources changed) filtered in the panel and selected; from the
  press on Compare to its cells shown (by default only the changed ones), every image in it
  loaded (``complete`` with a width), and the probe. Anchor: JupyterLab's own notebook editor
  opening B's executed notebook as an .ipynb file (``docmanager:open`` through
  ``window.jupyterapp``; no kernel is started: the notebook factory's ``preferKernel`` is turned
  off in the page) until its 60 cells and 30 images are shown and the probe passes. Both are
  timed as the first of the page and once more after closing it. Also timed: "Only changed
  cells" unticked (all 60 cells shown).
Each part is split with the Resource Timing entries of its requests: time to the request, the
server's answer (time to first byte), the download, and the rendering after the last answer.

The 10,000-run project (``bench_list.populate`` + the pair) is seeded once and cached in the
system's temp folder, keyed by the count and the sources that shape the store.

Run: ``.venv/bin/python benchmarks/bench_lab.py [--runs 10000] [--repeats 5] [--warmup 1]
[--no-cache] [--screenshots DIR]``
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import harness

from bench_compare import make_pair
from bench_list import populate
from jupyter_mlx.metrics import Metric
from jupyter_mlx.service import RunService
from jupyter_mlx.store import CellTiming, NewRun, RunOutcome
from jupyter_mlx.ports import free_port

PANEL_TARGET_MS = 1000.0
COMPARE_TARGET_MS = 2000.0
SMALL_RUNS = 10
PAIR_NOTEBOOK = "bench/compare_pair.ipynb"
PAIR_FILTER = "compare_pair"  # a bare word of the filter: a substring of the notebook path
ANCHOR_FILE = "anchor.ipynb"  # B's executed notebook, as a file of the project
QUIET_MS = 50.0  # the probe: a frame + a task round trip shorter than this = the main thread is free
WAIT_MS = 45_000  # bound of every in-page wait
LAB_START_TIMEOUT = 120.0
CACHE_VERSION = "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL_TAB = '.jp-SideBar .lm-TabBar-tab[data-id="jupyter-mlx-panel"]'
PANEL = "#jupyter-mlx-panel"

# -- in the page ----------------------------------------------------------------------------
# Installed in every page before JupyterLab's scripts: waits, probes and the clocks all run in
# the page, so Playwright's own round trips never count.
PAGE_SCRIPT = r"""
(() => {
  if (performance.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(100000);
  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
  const frameAndTask = () => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const visible = node => !!node && node.isConnected && node.getClientRects().length > 0 &&
    getComputedStyle(node).visibility !== 'hidden';
  const loaded = img => img.complete && img.naturalWidth > 0;

  /** A frame + a task round trip under `limit` ms: nothing long runs on the main thread. */
  async function quiet(limit, timeout) {
    const deadline = performance.now() + timeout;
    let probes = 0;
    while (performance.now() < deadline) {
      const start = performance.now();
      await frameAndTask();
      probes++;
      const end = performance.now();
      if (end - start < limit) return { end, probes };
    }
    throw new Error(`the main thread was never free for ${limit} ms in ${timeout} ms`);
  }

  /** The time `check()` first held, polled every few ms (as soon as the main thread is free). */
  function until(check, timeout, what) {
    return new Promise((resolve, reject) => {
      const deadline = performance.now() + timeout;
      const tick = () => {
        let ok = false;
        try { ok = check(); } catch (error) { reject(error); return; }
        if (ok) { resolve(performance.now()); return; }
        if (performance.now() > deadline) { reject(new Error(`timed out after ${timeout} ms waiting for ${what}`)); return; }
        setTimeout(tick, 4);
      };
      tick();
    });
  }

  const countPattern = total => new RegExp(
    `(^|[^\\d,])(${total}|${total.toLocaleString('en-US')}) runs?\\b`);

  const conditions = {
    panel: ({ total }) => () => {
      const panel = document.querySelector('#jupyter-mlx-panel');
      if (!visible(panel)) return false;
      if (!visible(panel.querySelector('.jp-mlx-run[data-id]'))) return false;
      const count = panel.querySelector('.jp-mlx-count');
      return !!count && countPattern(total).test(count.textContent || '');
    },
    scroll: ({ total }) => () => {
      const scroller = document.querySelector('#jupyter-mlx-panel .jp-mlx-scroller');
      const list = scroller.querySelector('.jp-mlx-list');
      const rowHeight = parseFloat(list.style.getPropertyValue('--jp-mlx-row-height')) || 84;
      const first = Math.floor(scroller.scrollTop / rowHeight);
      const last = Math.min(total - 1, Math.floor((scroller.scrollTop + scroller.clientHeight - 1) / rowHeight));
      const view = scroller.getBoundingClientRect();
      const inView = node => { const r = node.getBoundingClientRect(); return r.bottom > view.top && r.top < view.bottom; };
      if ([...list.querySelectorAll('.jp-mlx-run-placeholder')].some(inView)) return false;
      return !!list.querySelector(`.jp-mlx-run[data-id][data-index="${first}"]`) &&
        !!list.querySelector(`.jp-mlx-run[data-id][data-index="${last}"]`);
    },
    compare: ({ cells }) => () => {
      const view = [...document.querySelectorAll('.jp-mlx-compare')].find(visible);
      if (!view) return false;
      if (view.querySelectorAll('.jp-mlx-cell').length < cells) return false;
      return [...view.querySelectorAll('img')].every(loaded);
    },
    anchor: ({ cells, images }) => () => {
      const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(visible);
      if (!panel) return false;
      if (panel.querySelectorAll('.jp-Notebook .jp-Cell').length < cells) return false;
      const imgs = [...panel.querySelectorAll('.jp-OutputArea img')];
      return imgs.length >= images && imgs.every(loaded);
    }
  };

  const facts = {
    panel: () => ({
      dom_rows: document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run').length,
      dom_loaded_rows: document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run[data-id]').length,
      count_label: document.querySelector('#jupyter-mlx-panel .jp-mlx-count')?.textContent ?? ''
    }),
    scroll: () => {
      const scroller = document.querySelector('#jupyter-mlx-panel .jp-mlx-scroller');
      return {
        dom_rows: document.querySelectorAll('#jupyter-mlx-panel .jp-mlx-run').length,
        scroll_top: scroller.scrollTop,
        scroll_height: scroller.scrollHeight,
        first_index: Number(scroller.querySelector('.jp-mlx-run[data-index]')?.dataset.index ?? -1)
      };
    },
    compare: () => {
      const view = [...document.querySelectorAll('.jp-mlx-compare')].find(visible);
      return {
        cells: view.querySelectorAll('.jp-mlx-cell').length,
        images: view.querySelectorAll('img').length,
        dom_nodes: view.querySelectorAll('*').length
      };
    },
    anchor: () => {
      const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(visible);
      return {
        cells: panel.querySelectorAll('.jp-Notebook .jp-Cell').length,
        images: panel.querySelectorAll('.jp-OutputArea img').length,
        dom_nodes: panel.querySelectorAll('*').length
      };
    }
  };

  /** The requests to the server that started after t0, with their phases (ms from t0). */
  function requests(t0) {
    return performance.getEntriesByType('resource')
      .filter(e => e.startTime >= t0 - 1 && /\/(mlx|api)\//.test(e.name))
      .map(e => {
        const url = new URL(e.name);
        return {
          path: url.pathname + url.search.replace(/([?&]token=)[^&]*/, '$1…'),
          start: e.startTime - t0,
          request_start: (e.requestStart || e.startTime) - t0,
          first_byte: e.responseStart - t0,
          end: e.responseEnd - t0,
          server_ms: e.responseStart - (e.requestStart || e.startTime),
          download_ms: e.responseEnd - e.responseStart,
          bytes: e.encodedBodySize
        };
      });
  }

  /** Files of JupyterLab itself (scripts, styles, fonts) fetched after t0: code loaded lazily. */
  function statics(t0) {
    const entries = performance.getEntriesByType('resource')
      .filter(e => e.startTime >= t0 - 1 && /\/static\//.test(e.name) && !/favicon/.test(e.name));
    return { count: entries.length, bytes: entries.reduce((sum, e) => sum + (e.encodedBodySize || 0), 0),
             last_end: entries.length ? Math.max(...entries.map(e => e.responseEnd - t0)) : 0 };
  }

  async function measure(t0, opts) {
    const ready = await until(conditions[opts.kind](opts), opts.timeout, opts.kind);
    const probe = await quiet(opts.quiet, opts.timeout);
    return {
      ready_ms: ready - t0,
      interactive_ms: probe.end - t0,
      probes: probe.probes,
      requests: requests(t0),
      static_files: statics(t0),
      facts: facts[opts.kind] ? facts[opts.kind](opts) : {}
    };
  }

  window.__mlxBench = {
    /** After the page loaded: JupyterLab restored, the main thread free, then a pause. */
    async settle(quietMs, pauseMs, timeout) {
      if (window.jupyterapp) await window.jupyterapp.restored;
      await quiet(quietMs, timeout);
      await sleep(pauseMs);
      await quiet(quietMs, timeout);
      return { app: !!window.jupyterapp };
    },
    quiet: (limit, timeout) => quiet(limit, timeout),
    /** Start the clock at the next pointerdown (the press of the click that follows). */
    armClick(opts) {
      performance.clearResourceTimings();
      const state = { t0: null };
      window.addEventListener('pointerdown', () => { if (state.t0 === null) state.t0 = performance.now(); },
        { capture: true, once: true });
      this.pending = (async () => {
        await until(() => state.t0 !== null, opts.timeout, 'the click');
        return measure(state.t0, opts);
      })();
      return true;
    },
    result() { return this.pending; },
    async scroll(opts) {
      performance.clearResourceTimings();
      const scroller = document.querySelector('#jupyter-mlx-panel .jp-mlx-scroller');
      const max = scroller.scrollHeight - scroller.clientHeight;
      const t0 = performance.now();
      scroller.scrollTop = opts.to === 'end' ? max : Math.round(max / 2);
      return measure(t0, opts);
    },
    async showAll(opts) {
      performance.clearResourceTimings();
      const view = [...document.querySelectorAll('.jp-mlx-compare-widget')].find(visible);
      const input = view.querySelector('.jp-mlx-only-changed input');
      if (!input.checked) throw new Error('"Only changed cells" is not ticked');
      const t0 = performance.now();
      input.click();
      return measure(t0, opts);
    },
    /** JupyterLab's notebook editor opening a file, without starting a kernel. */
    async openNotebook(opts) {
      performance.clearResourceTimings();
      const app = window.jupyterapp;
      const factory = app.docRegistry.getWidgetFactory('Notebook');
      let noKernel = false;
      if (factory && '_preferKernel' in factory) {
        factory._preferKernel = false;
        noKernel = true;
      }
      const t0 = performance.now();
      app.commands.execute('docmanager:open', { path: opts.path, factory: 'Notebook' })
        .catch(error => console.error('docmanager:open failed', error));
      const result = await measure(t0, opts);
      result.facts.no_kernel = noKernel;
      return result;
    }
  };
})();
"""


# -- the projects ---------------------------------------------------------------------------
def _cache_key(count: int) -> str:
    """Changes when anything that shapes the seeded store changes."""
    digest = hashlib.sha256(CACHE_VERSION.encode())
    sources = sorted((harness.REPO / "jupyter_mlx" / "store").glob("*.py"))
    sources += [harness.REPO / "benchmarks" / name for name in ("bench_list.py", "bench_compare.py", "harness.py")]
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"runs-{count}-{digest.hexdigest()[:16]}"


def _cleared(notebook: dict[str, Any]) -> dict[str, Any]:
    """The notebook as it was before it ran: no outputs, no execution counts."""
    cells = [{**cell, "outputs": [], "execution_count": None} if cell["cell_type"] == "code" else cell
             for cell in notebook["cells"]]
    return {**notebook, "cells": cells}


def record_pair(service: RunService, folder: Path) -> dict[str, Any]:
    """The benchmark pair as two finished runs of one notebook (v1 = A, v2 = B)."""
    pair = make_pair(folder)
    refs = []
    for index, side in enumerate(("a", "b")):
        executed = json.loads(Path(pair[side]).read_text())
        record = service.store.create_run(NewRun(
            notebook=PAIR_NOTEBOOK,
            source=json.dumps(_cleared(executed)).encode(),
            parameters={"seed": index},
            host="bench-host",
            pid=1,
        ))
        started = time.time()
        service.store.mark_running(record.id, started)
        timings = [CellTiming(i, started + i * 0.05, started + i * 0.05 + 0.04) for i in range(len(executed["cells"]))]
        service.store.finish_run(record.id, RunOutcome(
            status="succeeded", notebook=executed, started_at=started, finished_at=started + 3.2,
            cell_timings=timings, metrics=[Metric("accuracy", 0.91 + 0.01 * index)],
        ))
        refs.append(record.ref)
    return {"refs": refs, "bytes_a": pair["bytes_a"], "bytes_b": pair["bytes_b"],
            "changed_outputs": pair["changed_outputs"], "changed_sources": pair["changed_sources"],
            "b_path": pair["b"]}


def seed_big(project: Path, count: int) -> dict[str, Any]:
    """``count - 2`` runs by ``populate``, then the pair's two (the newest): ``count`` in all."""
    service = RunService(project)
    try:
        seconds, statuses = harness.timed(lambda: populate(service.store, count - 2))
        print(f"  populate: {count - 2:,} runs in {seconds:.0f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="mlx-bench-lab-pair-") as tmp:
            pair = record_pair(service, Path(tmp))
            shutil.copyfile(pair.pop("b_path"), project / ANCHOR_FILE)
    finally:
        service.close()
    return {"statuses": statuses, "populate_seconds": seconds, "pair": pair}


def big_project(project: Path, count: int, use_cache: bool) -> dict[str, Any]:
    """Fill ``project`` with the big store, from the cache when it has it."""
    cache = Path(tempfile.gettempdir()) / "jupyter-mlx-bench-cache" / f"lab-{_cache_key(count)}"
    if use_cache and (cache / "seed.json").is_file():
        print(f"seeded store from the cache {cache}", flush=True)
        shutil.copytree(cache / "project", project, dirs_exist_ok=True)
        return {**json.loads((cache / "seed.json").read_text()), "from_cache": True}
    print(f"seeding {count:,} runs (cached afterwards in {cache}) ...", flush=True)
    staging = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "project").mkdir(parents=True)
    try:
        seed = seed_big(staging / "project", count)
        (staging / "project" / ".mlx" / "runs.sqlite.lock").unlink(missing_ok=True)
        (staging / "seed.json").write_text(json.dumps(seed))
        shutil.copytree(staging / "project", project, dirs_exist_ok=True)
        if use_cache:
            shutil.rmtree(cache, ignore_errors=True)
            staging.rename(cache)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**seed, "from_cache": False}


def small_project(project: Path, count: int) -> dict[str, Any]:
    service = RunService(project)
    try:
        return {"statuses": populate(service.store, count)}
    finally:
        service.close()


# -- JupyterLab -----------------------------------------------------------------------------


def _status(port: int, path: str, token: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@contextmanager
def jupyter_lab(root: Path, home: Path) -> Iterator[dict[str, Any]]:
    """A JupyterLab serving ``root`` on 127.0.0.1 with throwaway settings; always stopped."""
    settings = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    argv = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, for docmanager:open
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    log = home / "lab.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, env=env, cwd=root, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if _status(port, "/api/status", token) == 200 and _status(port, "/mlx/notebooks", token) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab not ready in {LAB_START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield {"base": f"http://127.0.0.1:{port}", "port": port, "token": token, "log": log, "pid": process.pid}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# -- the ways -------------------------------------------------------------------------------
class Lab:
    """A browser context on one JupyterLab; each way opens a fresh page in a workspace of its own."""

    def __init__(self, browser: Any, server: dict[str, Any], name: str, shots: Path | None) -> None:
        self.server, self.name, self.shots = server, name, shots
        self.context = browser.new_context(viewport={"width": 1280, "height": 720})
        self.context.add_init_script(PAGE_SCRIPT)
        self.pages = 0
        self.load_failures: list[str] = []

    @contextmanager
    def page(self) -> Iterator[tuple[Any, float]]:
        """A fresh page, JupyterLab restored and idle; yields (page, seconds it took to load).
        A page that does not load is screenshotted and tried once more."""
        for attempt in (1, 2):
            self.pages += 1
            page = self.context.new_page()
            try:
                start = time.perf_counter()
                self._load(page)
                break
            except Exception as error:
                self._failure_shot(page, "load")
                page.close()
                if attempt == 2:
                    raise
                self.load_failures.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
                print(f"  ({self.name}: the page did not load, trying again: {self.load_failures[-1]})", flush=True)
        try:
            yield page, time.perf_counter() - start
        except Exception:
            self._failure_shot(page, "measure")
            raise
        finally:
            page.close()

    def _load(self, page: Any) -> None:
        page.set_default_timeout(30_000)
        workspace = f"bench-{self.name}-{self.pages}-{secrets.token_hex(3)}"
        page.goto(f"{self.server['base']}/lab/workspaces/{workspace}?token={self.server['token']}",
                  wait_until="domcontentloaded", timeout=60_000)
        page.locator(PANEL_TAB).wait_for(state="visible", timeout=60_000)
        settled = page.evaluate("a => window.__mlxBench.settle(a[0], a[1], a[2])", [QUIET_MS, 500, WAIT_MS])
        if not settled["app"]:
            raise RuntimeError("window.jupyterapp is missing (expose_app_in_browser)")

    def _failure_shot(self, page: Any, what: str) -> None:
        shot = Path(tempfile.gettempdir()) / f"bench-lab-failure-{self.name}-{self.pages}-{what}.png"
        try:
            page.screenshot(path=str(shot), timeout=10_000)
            print(f"  (screenshot of the failed page: {shot})", file=sys.stderr)
        except Exception:  # noqa: BLE001 - the original error matters, not this one
            pass

    def shot(self, page: Any, name: str) -> None:
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(self.shots / f"{name}.png"))

    def close(self) -> None:
        self.context.close()


def _options(kind: str, **more: Any) -> dict[str, Any]:
    return {"kind": kind, "timeout": WAIT_MS, "quiet": QUIET_MS, **more}


def open_panel(page: Any, total: int) -> dict[str, Any]:
    page.evaluate("o => window.__mlxBench.armClick(o)", _options("panel", total=total))
    page.locator(PANEL_TAB).click()
    return page.evaluate("() => window.__mlxBench.result()")


def way_panel(lab: Lab, total: int, scroll: bool) -> dict[str, Any]:
    with lab.page() as (page, load_s):
        result = {"page_load_s": load_s, "open": open_panel(page, total)}
        if scroll:
            page.evaluate("a => window.__mlxBench.quiet(a[0], a[1])", [QUIET_MS, WAIT_MS])
            for to in ("middle", "end"):
                result[f"scroll_{to}"] = page.evaluate("o => window.__mlxBench.scroll(o)",
                                                       _options("scroll", total=total, to=to))
        lab.shot(page, f"panel-{lab.name}")
    return result


def way_compare(lab: Lab, total: int, refs: list[str], cells: int) -> dict[str, Any]:
    with lab.page() as (page, load_s):
        panel = page.locator(PANEL)
        open_panel(page, total)
        search = panel.locator(".jp-mlx-search-input")
        search.fill(PAIR_FILTER)
        search.press("Enter")
        rows = [panel.locator(f'.jp-mlx-run[data-ref="{ref}"]') for ref in refs]
        for row in rows:
            row.wait_for(state="visible")
        page.wait_for_function(
            "() => /(^|\\D)2 runs\\b/.test(document.querySelector('#jupyter-mlx-panel .jp-mlx-count').textContent)")
        rows[0].locator(".jp-mlx-run-params").click()
        rows[1].locator(".jp-mlx-run-params").click(modifiers=["Control"])
        button = panel.locator(".jp-mlx-compare-button")
        page.wait_for_function(
            "() => { const b = document.querySelector('#jupyter-mlx-panel .jp-mlx-compare-button');"
            " const inner = b && (b.querySelector('button, jp-button') || b);"
            " return !!inner && !inner.disabled && !inner.hasAttribute('disabled')"
            " && !b.classList.contains('lm-mod-disabled') && inner.getAttribute('aria-disabled') !== 'true'; }")
        result: dict[str, Any] = {"page_load_s": load_s}
        for part in ("open", "again"):  # the first in the page, then once more after closing it
            if part == "again":
                close_main_area(page)
            page.evaluate("a => window.__mlxBench.quiet(a[0], a[1])", [QUIET_MS, WAIT_MS])
            page.evaluate("o => window.__mlxBench.armClick(o)", _options("compare", cells=1))
            button.click()
            result[part] = page.evaluate("() => window.__mlxBench.result()")
        lab.shot(page, "compare")
        page.evaluate("a => window.__mlxBench.quiet(a[0], a[1])", [QUIET_MS, WAIT_MS])
        result["show_all"] = page.evaluate("o => window.__mlxBench.showAll(o)", _options("compare", cells=cells))
        lab.shot(page, "compare-all")
    return result


def way_anchor(lab: Lab, cells: int, images: int) -> dict[str, Any]:
    with lab.page() as (page, load_s):
        result: dict[str, Any] = {"page_load_s": load_s}
        for part in ("open", "again"):
            if part == "again":
                close_main_area(page)
                page.evaluate("a => window.__mlxBench.quiet(a[0], a[1])", [QUIET_MS, WAIT_MS])
            result[part] = page.evaluate("o => window.__mlxBench.openNotebook(o)",
                                         _options("anchor", path=ANCHOR_FILE, cells=cells, images=images))
        lab.shot(page, "anchor")
    return result


def close_main_area(page: Any) -> None:
    """Close every main-area tab, and wait until they are gone and JupyterLab is idle."""
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    page.wait_for_function("() => !document.querySelector('.jp-mlx-compare, .jp-NotebookPanel')")
    page.evaluate("a => window.__mlxBench.quiet(a[0], a[1])", [QUIET_MS, WAIT_MS])
    page.wait_for_timeout(500)


def interleave(ways: dict[str, Callable[[], dict[str, Any]]], rounds: int, warmup: int) -> tuple[dict, dict]:
    """Each round runs every way once, the order rotated each round; the first ``warmup`` are apart."""
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in ways}
    warm: dict[str, list[dict[str, Any]]] = {name: [] for name in ways}
    names = list(ways)
    for round_ in range(warmup + rounds):
        shift = round_ % len(names)
        line = []
        for name in names[shift:] + names[:shift]:
            result = ways[name]()
            (warm if round_ < warmup else samples)[name].append(result)
            line.append(f"{name} {result['open']['interactive_ms']:.0f} ms")
        label = "warm-up" if round_ < warmup else f"round {round_ - warmup + 1}/{rounds}"
        print(f"  {label}: " + "; ".join(line), flush=True)
    return samples, warm


# -- reporting ------------------------------------------------------------------------------
def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _summary(values_ms: list[float]) -> dict[str, float]:
    return harness.summary_ms([v / 1000 for v in values_ms])


def _phases(result: dict[str, Any], pattern: str) -> dict[str, float]:
    """Where the time went: to the request, the server, the download, the rendering after."""
    requests = [r for r in result["requests"] if re.search(pattern, r["path"])]
    if not requests:
        return {}
    first = min(requests, key=lambda r: r["start"])
    last_end = max(r["end"] for r in requests)
    return {
        "to_request_ms": first["request_start"],
        "server_ms": max(r["server_ms"] for r in requests),
        "download_ms": max(r["download_ms"] for r in requests),
        "responses_done_ms": last_end,
        "render_after_ms": result["ready_ms"] - last_end,
        "ready_to_interactive_ms": result["interactive_ms"] - result["ready_ms"],
    }


PHASE_KEYS = ["to_request_ms", "server_ms", "download_ms", "responses_done_ms", "render_after_ms",
              "ready_to_interactive_ms"]


def _phase_row(label: str, results: list[dict[str, Any]], pattern: str) -> list[Any]:
    phases = [p for p in (_phases(r, pattern) for r in results) if p]
    if not phases:
        return [label, "(no request seen)", "", "", "", "", ""]
    return [label, *[_median([p[k] for p in phases]) for k in PHASE_KEYS]]


def _request_kind(path: str) -> str:
    """The path without ids, query or cache-busting numbers."""
    parts = path.split("?")[0].split("/")
    kind = "/".join("<id>" if len(p) >= 16 and p.isalnum() else p for p in parts)
    return re.sub(r"^/lab/api/workspaces/.+", "/lab/api/workspaces/<name>", kind)


def _requests_by_kind(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median server time, download, end and size per request kind; count per open."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for request in result["requests"]:
            grouped.setdefault(_request_kind(request["path"]), []).append(request)
    return {kind: {"per_open": len(items) / max(1, len(results)),
                   "server_ms": _median([r["server_ms"] for r in items]),
                   "download_ms": _median([r["download_ms"] for r in items]),
                   "end_ms": _median([r["end"] for r in items]),
                   "bytes": _median([r["bytes"] for r in items])}
            for kind, items in grouped.items()}


def report(samples: dict[str, list[dict[str, Any]]], warm: dict[str, list[dict[str, Any]]],
           args: argparse.Namespace, loads: tuple[float, float]) -> dict[str, Any]:
    big, small = f"panel open, {args.runs:,} runs", f"panel open, {SMALL_RUNS} runs (anchor)"
    compare, anchor = "compare view, first in the page", "notebook editor, first in the page (anchor)"
    compare2, anchor2 = "compare view, again in the page", "notebook editor, again in the page (anchor)"
    # (label, way, part, request pattern for the phases)
    lines = [
        (big, "big", "open", r"^/mlx/runs\?"),
        (small, "small", "open", r"^/mlx/runs\?"),
        (f"scroll to the middle, {args.runs:,} runs", "big", "scroll_middle", r"^/mlx/runs\?"),
        (f"scroll to the end, {args.runs:,} runs", "big", "scroll_end", r"^/mlx/runs\?"),
        (compare, "compare", "open", r"^/mlx/(compare|runs/[^/?]+/notebook)"),
        (anchor, "anchor", "open", r"^/api/contents/[^?]+\?.*content=1"),
        (compare2, "compare", "again", r"^/mlx/(compare|runs/[^/?]+/notebook)"),
        (anchor2, "anchor", "again", r"^/api/contents/[^?]+\?.*content=1"),
        ("compare view: untick 'Only changed cells' (60 cells)", "compare", "show_all", r"^/mlx/"),
    ]

    def results(way: str, part: str) -> list[dict[str, Any]]:
        return [r[part] for r in samples[way] if part in r]

    stats = {label: _summary([r["interactive_ms"] for r in results(way, part)]) for label, way, part, _ in lines}
    rows = []
    for label, way, part, _ in lines:
        s = stats[label]
        target = within = ""
        if label == big:
            target, within = f"< {PANEL_TARGET_MS:.0f}", "MET" if s["median_ms"] < PANEL_TARGET_MS else "MISSED"
        elif label == compare:
            target, within = f"< {COMPARE_TARGET_MS:.0f}", "MET" if s["median_ms"] < COMPARE_TARGET_MS else "MISSED"
        shown = _median([r["ready_ms"] for r in results(way, part)])
        rows.append([label, s["median_ms"], s["p25_ms"], s["p75_ms"], s["min_ms"], s["max_ms"], shown, target, within])
    ratios = {
        f"panel {args.runs:,} / {SMALL_RUNS} runs": stats[big]["median_ms"] / stats[small]["median_ms"],
        "compare view / notebook editor (first in the page)": stats[compare]["median_ms"] / stats[anchor]["median_ms"],
        "compare view / notebook editor (again in the page)": stats[compare2]["median_ms"] / stats[anchor2]["median_ms"],
    }
    print(f"\nFrom the press (or the docmanager:open call) to shown and interactive (then a frame + task "
          f"round trip < {QUIET_MS:.0f} ms), measured in the page; {args.repeats} interleaved rounds after "
          f"{args.warmup} warm-up, ms")
    harness.print_table(["what", "median", "p25", "p75", "min", "max", "shown (median)", "target", ""], rows)
    print()
    harness.print_table(["ratio", "medians"], [[name, f"{value:.2f}x"] for name, value in ratios.items()])

    print("\nWhere the time went (medians, ms from the press): first request sent; the slowest request's "
          "server time (request sent -> first byte) and download; all answers in; rendering after the last "
          "answer (to shown); shown -> interactive")
    phase_rows = [_phase_row(label, results(way, part), pattern) for label, way, part, pattern in lines[:8]]
    harness.print_table(["what", "to request", "server", "download", "answers in", "render after",
                         "-> interactive"], phase_rows)

    kinds = {label: _requests_by_kind(results(way, part)) for label, way, part, _ in lines[:8]}
    request_rows = [[label, kind, f"{v['per_open']:.1f}", v["server_ms"], v["download_ms"], v["end_ms"], int(v["bytes"])]
                    for label, per in kinds.items() for kind, v in per.items()]
    print("\nEvery request to the server during the timed part (medians; per = per open)")
    harness.print_table(["what", "request", "per", "server ms", "download ms", "done at ms", "bytes"], request_rows)

    statics = {label: _median([r["static_files"]["count"] for r in results(way, part)])
               for label, way, part, _ in lines[:8]}
    facts = {
        "dom_rows_after_open": [r["facts"]["dom_rows"] for r in results("big", "open")],
        "dom_rows_after_scroll_end": [r["facts"]["dom_rows"] for r in results("big", "scroll_end")],
        "count_label": results("big", "open")[0]["facts"]["count_label"] if samples["big"] else "",
        "compare_view": results("compare", "open")[0]["facts"] if samples["compare"] else {},
        "compare_view_all": results("compare", "show_all")[0]["facts"] if samples["compare"] else {},
        "anchor_view": results("anchor", "open")[0]["facts"] if samples["anchor"] else {},
        "lazily_loaded_static_files": statics,
    }
    cold = {name: [r["open"]["interactive_ms"] for r in items] for name, items in warm.items()}
    page_loads = {name: _median([r["page_load_s"] for r in items]) for name, items in samples.items()}
    print(f"\n.jp-mlx-run elements in the DOM with {args.runs:,} runs: {facts['dom_rows_after_open']} after "
          f"opening, {facts['dom_rows_after_scroll_end']} after scrolling to the end; count label "
          f"{facts['count_label']!r}")
    print(f"compare view: {facts['compare_view']}; all cells: {facts['compare_view_all']}; "
          f"notebook editor: {facts['anchor_view']}")
    print("JupyterLab files (scripts, styles, fonts) loaded during the timed part, median count: "
          + ", ".join(f"{k}: {v:g}" for k, v in statics.items() if v))
    if any(cold.values()):
        print("warm-up round (first page of each way, servers cold), interactive ms: "
              + ", ".join(f"{k} {', '.join(f'{v:.0f}' for v in vs)}" for k, vs in cold.items()))
    print("page load until JupyterLab is restored and idle, median s: "
          + ", ".join(f"{k} {v:.1f}" for k, v in page_loads.items()))
    print(f"JupyterLab start-up: {loads[0]:.1f} s ({args.runs:,} runs), {loads[1]:.1f} s ({SMALL_RUNS} runs)")
    return {"stats": stats, "ratios": ratios, "facts": facts, "cold_interactive_ms": cold,
            "page_load_s": page_loads, "requests": kinds,
            "phases": {row[0]: dict(zip(PHASE_KEYS, row[1:])) for row in phase_rows}}


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the big project (default 10000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--no-cache", action="store_true", help="seed the big store afresh, do not cache it")
    parser.add_argument("--screenshots", type=Path, default=None, help="save a screenshot of each view there")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20")

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("JUPYTER_MLX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        raise SystemExit(f"Chromium not found at {chromium}: apt-get install chromium, or set JUPYTER_MLX_CHROMIUM")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mlx-bench-lab-") as tmp, ExitStack() as stack:
        big_root, small_root = Path(tmp) / "big", Path(tmp) / "small"
        big_root.mkdir()
        small_root.mkdir()
        seconds, seed = harness.timed(lambda: big_project(big_root, args.runs, not args.no_cache))
        print(f"  big project ready in {seconds:.1f} s; pair {seed['pair']['refs']}", flush=True)
        small = small_project(small_root, SMALL_RUNS)
        anchor_notebook = json.loads((big_root / ANCHOR_FILE).read_text())
        cells = len(anchor_notebook["cells"])
        images = sum(1 for cell in anchor_notebook["cells"] for output in cell.get("outputs", ())
                     if "image/png" in output.get("data", {}))

        print("starting two JupyterLabs and Chromium ...", flush=True)
        start = time.perf_counter()
        big_lab = stack.enter_context(jupyter_lab(big_root, Path(tmp) / "home-big"))
        big_load = time.perf_counter() - start
        start = time.perf_counter()
        small_lab = stack.enter_context(jupyter_lab(small_root, Path(tmp) / "home-small"))
        small_load = time.perf_counter() - start
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        stack.callback(browser.close)
        labs = {
            "big": Lab(browser, big_lab, str(args.runs), args.screenshots),
            "small": Lab(browser, small_lab, str(SMALL_RUNS), args.screenshots),
        }
        for lab in labs.values():
            stack.callback(lab.close)

        ways = {
            "big": lambda: way_panel(labs["big"], args.runs, scroll=True),
            "small": lambda: way_panel(labs["small"], SMALL_RUNS, scroll=False),
            "compare": lambda: way_compare(labs["big"], args.runs, seed["pair"]["refs"], cells),
            "anchor": lambda: way_anchor(labs["big"], cells, images),
        }
        print(f"measuring: {args.warmup} warm-up + {args.repeats} rounds of {', '.join(ways)} ...", flush=True)
        samples, warm = interleave(ways, args.repeats, args.warmup)
        sessions = json.loads(_get_json(big_lab, "/api/sessions"))
        load_failures = {lab.name: lab.load_failures for lab in labs.values()}
    load_after = os.getloadavg()

    summary = report(samples, warm, args, (big_load, small_load))
    if any(load_failures.values()):
        print(f"pages that did not load and were tried again: {load_failures}")
    print(f"kernel sessions left on the big server: {len(sessions)}; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}")
    path = harness.write_results("bench_lab", {
        "runs": args.runs, "small_runs": SMALL_RUNS, "repeats": args.repeats, "warmup": args.warmup,
        "targets_ms": {"panel_open": PANEL_TARGET_MS, "compare_interactive": COMPARE_TARGET_MS},
        "quiet_probe_ms": QUIET_MS, "seed": seed, "small_project": small,
        "anchor_notebook": {"cells": cells, "images": images},
        "load_avg_before": load_before, "load_avg_after": load_after,
        "summary": summary, "page_load_failures": load_failures, "samples": samples, "warmup_samples": warm,
        "notes": "Times are measured in the page with performance.now(): from the pointerdown of the click "
                 "(or the docmanager:open call) until the view is shown (rows with the count; cells with "
                 "every image decoded) and a requestAnimationFrame + setTimeout(0) round trip takes under "
                 f"{QUIET_MS:.0f} ms. Each open is a fresh page in a workspace of its own. The notebook "
                 "editor opens B's executed notebook without starting a kernel.",
    })
    print(f"\nresults: {path}")
    return 0


def _get_json(server: dict[str, Any], path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"token {server['token']}"})
        return connection.getresponse().read().decode()
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
