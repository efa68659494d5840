"""How train.py fails: one clear line for user errors, the traceback in train.log, a FAILED marker.

A user error (bad config value, missing or malformed data, unreadable checkpoint) prints
``Run failed: <message>`` and exits 1; its traceback goes to the run's log file only (or to the
console too with HYDRA_FULL_ERROR=1). Any failure leaves ``FAILED`` in the run folder with the
message; a later successful run in that folder (a resume) removes it. Inside a multirun (sweeps)
the error is re-raised after that, so the launcher records the failed job.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from plantbimoe.atomic import atomic_write_text
from tasks.runner import run

log = logging.getLogger("train")
MARKER = "FAILED"
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError,
               OmegaConfBaseException, pickle.UnpicklingError)


def user_message(error: BaseException) -> str | None:
    """The one-line message of a user error (constructor errors unwrapped, with their config key);
    None for anything else (a bug: its traceback stays on the console)."""
    key = ""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        lines = [x for x in str(error).splitlines() if x.startswith("full_key: ")]
        key = key or (lines[-1].removeprefix("full_key: ") if lines else "")
        error = error.__cause__
    if not isinstance(error, USER_ERRORS):
        return None
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{key}: {text}" if key else text


def _output_dir(cfg: DictConfig) -> Path | None:
    try:
        return Path(cfg.paths.output_dir)
    except Exception:  # noqa: BLE001 - a broken config must not hide the original error
        return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None


def _to_log_files(error: BaseException) -> None:
    """The full traceback into the file handlers of the root logger (train.log), not the console."""
    text = "".join(traceback.format_exception(error))
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "traceback:\n%s", (text,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def write_marker(folder: Path, message: str) -> Path:
    """`folder`/FAILED with `message`, written under a temporary name and renamed."""
    return atomic_write_text(folder / MARKER, message + "\n")


def guarded_run(cfg: DictConfig) -> float | None:
    """`tasks.runner.run` with the failure handling of the module docstring."""
    folder = _output_dir(cfg)
    if folder is not None:
        (folder / MARKER).unlink(missing_ok=True)
    try:
        return run(cfg)
    except Exception as error:
        message = user_message(error)
        _to_log_files(error)
        if folder is not None:
            write_marker(folder, message or f"{type(error).__name__}: {error}")
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if message is None or multirun or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        where = f" or {folder / 'train.log'}" if folder is not None else ""
        log.error("Run failed: %s  [traceback: HYDRA_FULL_ERROR=1%s]", message, where)
        sys.exit(1)
