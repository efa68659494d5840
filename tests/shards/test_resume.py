"""A build killed mid-way resumes to exactly the shards of a clean build, without duplicates."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from datamodules.shards.builder import INDEX_NAME, build_shards
from datamodules.shards.manifest import load_manifest
from datamodules.shards.unit import BuildParams
from tests.shards.conftest import random_contig, write_fasta

ARGS = ["--window-length", "256", "--overlap", "16", "--shard-size", "32KiB", "--val-fraction", "0.1",
        "--test-fraction", "0.1", "--min-holdout-length", "0", "--processes", "1", "--quiet"]


def _cli(manifest: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "datamodules.shards.cli", "build", str(manifest), str(out),
                             *ARGS], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _tree(root: Path) -> list[str]:
    files = (p for p in root.rglob("*") if p.is_file() and ".build" not in p.parts)
    return sorted(str(p.relative_to(root)) for p in files)


@pytest.mark.slow
def test_resume_after_kill_equals_clean_build(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    write_fasta(tmp_path / "big.fa", {f"c{i}": random_contig(rng, 300_000) for i in range(6)})
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({"corpus": "kill", "species": [{"name": "sp", "fasta": "big.fa"}]}))

    params = BuildParams(window_length=256, overlap=16, shard_size=32 * 1024, val_fraction=0.1,
                         test_fraction=0.1, min_holdout_length=0)  # as ARGS
    build_shards(load_manifest(manifest), tmp_path / "clean", params, processes=1, progress=False)

    killed = tmp_path / "killed"
    proc = _cli(manifest, killed)
    while proc.poll() is None and len(list(killed.rglob("*.tar"))) < 3:
        time.sleep(0.005)  # wait until some shards are finished, then kill the whole process group
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / INDEX_NAME).exists(), "the build finished before it could be killed"
    assert 0 < len(list(killed.rglob("*.tar"))) < len(list((tmp_path / "clean").rglob("*.tar")))

    resumed = _cli(manifest, killed)
    assert resumed.wait() == 0, resumed.stderr.read()
    assert _tree(killed) == _tree(tmp_path / "clean")  # no leftover temporaries, no extra shards
    for name in _tree(killed):
        assert filecmp.cmp(killed / name, tmp_path / "clean" / name, shallow=False), name
