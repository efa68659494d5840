"""Output files (embeddings) written under a temporary name and renamed when complete (plantbimoe.atomic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, atomic_text

PARQUET_HINT = "Parquet output needs pyarrow: pip install pyarrow (or write .npy)"


def require_parquet() -> None:
    """Fail early, before any model work, when Parquet output cannot be written."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError(PARQUET_HINT)


def ids_path(path: str | Path) -> Path:
    """The id list beside a .npy output: ``x.npy`` -> ``x.ids.txt``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".npy") + ".ids.txt")


def save_embeddings(path: str | Path, ids: Sequence[str], array: np.ndarray,
                    columns: Sequence[str] = ("embedding",)) -> list[Path]:
    """Write (N, d) or (N, k, d) `array` with its row ids; returns the files written.

    ``.npy``: the array, plus ``<name>.ids.txt`` (one id per line, row order).
    ``.parquet``: an ``id`` column and one fixed-size-list float32 column per entry of `columns`
    (the k layers of a 3-D array; one ``embedding`` column for a 2-D array).
    """
    path = Path(path)
    if path.suffix == ".npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, array)
        with atomic_text(ids_path(path)) as handle:
            handle.writelines(f"{i}\n" for i in ids)
        return [path, ids_path(path)]
    if path.suffix == ".parquet":
        require_parquet()
        import pyarrow as pa
        import pyarrow.parquet as pq

        layers = array[:, None] if array.ndim == 2 else array
        table = {"id": pa.array(list(ids), pa.string())}
        for k, name in enumerate(columns):
            values = np.ascontiguousarray(layers[:, k], dtype=np.float32)
            table[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        with atomic_path(path) as tmp:
            pq.write_table(pa.table(table), tmp)
        return [path]
    raise ValueError(f"{path}: output must end in .npy or .parquet")
