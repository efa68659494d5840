"""Published results as TensorBoard runs: event files with our tags and hparams, and the real
TensorBoard server on a loopback port serving one of our runs and the reference runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from comparison.published import load_published
from comparison.tensorboard import MANIFEST, REFERENCE_DIR, write_reference_runs
from tasks.runner import run
from tests.finetune.helpers import labelled_rows, random_sequences, write_table
from tests.framework.hydra_utils import compose_config


def _events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_every_published_number_is_a_run_with_our_tag_and_hparams(tmp_path: Path) -> None:
    published = load_published()
    folder = write_reference_runs(tmp_path, published, span=100)
    runs = {p.parent for p in folder.rglob("events.out.tfevents.*")}
    assert len(runs) == len(published.results)
    agront = _events(folder / "paper" / "AgroNT" / "task_core_promoter")
    assert agront.Tags()["scalars"] == ["test/mcc"]
    assert [(e.step, round(e.value, 4)) for e in agront.Scalars("test/mcc")] == [(0, 0.5874), (100, 0.5874)]
    hparams = agront.summary_metadata["_hparams_/session_start_info"].plugin_data.content
    assert b"data/task_group" in hparams and b"AgroNT [PlantBiMoE paper]" in hparams
    dnabert = _events(folder / "dnallm_mark" / "DNABERT-2" / "promoter_strength_leaf")
    assert [round(e.value, 3) for e in dnabert.Scalars("test/r2")] == [0.546, 0.546]
    write_reference_runs(tmp_path, published)  # a second write replaces the first
    assert json.loads((folder / MANIFEST).read_text())["runs"] == len(published.results)


def test_a_folder_it_did_not_write_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / REFERENCE_DIR).mkdir()
    with pytest.raises(FileExistsError, match="not written by this command"):
        write_reference_runs(tmp_path, load_published())


def _our_tiny_run(output: Path, data: Path) -> None:
    rng = np.random.default_rng(0)
    rows = labelled_rows("binary", 2, random_sequences(rng, 40, 30, 60), rng)
    data.mkdir(parents=True)
    for name, part in (("train.csv", rows[:24]), ("dev.csv", rows[24:32]), ("test.csv", rows[32:])):
        write_table(data / name, part)
    overrides = [
        "experiment=finetune_mpgb", "data/mpgb=core_promoter", f"data.root={data}", "data.batch_size=8",
        "backbone.d_model=32", "backbone.n_layer=2", "backbone.intermediate_size=64",
        "trainer.max_epochs=null", "trainer.max_steps=2", "trainer.val_check_interval=2",
        "trainer.log_every_n_steps=1", "callbacks.progress_bar=null",
    ]  # fmt: skip
    run(compose_config(overrides, output))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_tensorboard_serves_our_run_beside_the_reference_runs(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    _our_tiny_run(logdir / "finetune_mpgb" / "tiny", tmp_path / "data")
    write_reference_runs(logdir, load_published())
    ours, theirs = "finetune_mpgb/tiny/tensorboard", "published/dnallm_mark/DNABERT-2/core_promoter"
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
         "--port", str(port), "--load_fast=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/data"
    try:
        runs: list = []
        for _ in range(240):  # until the server is up and has loaded both runs (bounded)
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited with {server.returncode}")
            try:
                runs = _get(f"{base}/runs")
            except OSError:
                runs = []
            if ours in runs and theirs in runs:
                break
            time.sleep(0.5)
        assert ours in runs and theirs in runs, runs
        series = {}
        for name in (ours, theirs):
            query = urllib.parse.urlencode({"run": name, "tag": "test/mcc"})
            series[name] = _get(f"{base}/plugin/scalars/scalars?{query}")
        assert len(series[ours]) == 1 and -1.0 <= series[ours][0][2] <= 1.0
        assert [round(value, 3) for _, _, value in series[theirs]] == [0.540]
    finally:
        server.terminate()
        server.wait(timeout=30)
