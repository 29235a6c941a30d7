import math

import pytest

from jupyter_mlx.metrics import METRIC_MIMETYPE, Metric, log_metric, read_metrics, summarize


def _display(data):
    return {"output_type": "display_data", "data": data, "metadata": {}}


def test_log_metric_emits_the_mimetype_with_a_text_fallback(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.append((obj, raw)))
    log_metric("loss", 0.5, step=3)
    (data, raw), = shown
    assert raw is True
    assert data[METRIC_MIMETYPE] == {"name": "loss", "value": 0.5, "step": 3}
    assert data["text/plain"] == "loss[3] = 0.5"


@pytest.mark.parametrize(
    "name, value, step",
    [("", 1.0, None), ("a", "1", None), ("a", True, None), ("a", math.nan, None), ("a", 1.0, 1.5)],
)
def test_log_metric_rejects_bad_values(name, value, step):
    with pytest.raises(ValueError):
        log_metric(name, value, step)


def test_read_metrics_reads_our_mimetype_and_numeric_scraps_in_order():
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {
                "cell_type": "code",
                "outputs": [
                    _display({METRIC_MIMETYPE: {"name": "acc", "value": 0.5, "step": None}}),
                    {"output_type": "stream", "name": "stdout", "text": "acc 0.9"},
                    _display(
                        {"application/scrapbook.scrap.json+json": {"name": "f1", "data": 0.7, "encoder": "json", "version": 1}}
                    ),
                    _display(
                        {"application/scrapbook.scrap.json+json": {"name": "note", "data": "text", "encoder": "json", "version": 1}}
                    ),
                    _display({METRIC_MIMETYPE: {"name": "acc", "value": 0.9, "step": None}}),
                ],
            },
        ]
    }
    metrics = read_metrics(nb)
    assert metrics == [Metric("acc", 0.5), Metric("f1", 0.7), Metric("acc", 0.9)]
    assert summarize(metrics) == {"acc": 0.9, "f1": 0.7}
