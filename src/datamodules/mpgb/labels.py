"""Task types of the MPGB sequence tasks and parsing of their label fields."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

TASK_TYPES = ("binary", "multiclass", "multilabel", "regression")
_SEPARATORS = re.compile(r"[;,\s]+")


class LabelError(ValueError):
    """A label that does not fit the declared task (the caller adds the file and row).

    `row` is the index of the offending label in a batch parsed by `parse_labels`.
    """

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


def check_task(task_type: str, num_labels: int | None) -> None:
    """Raise if `task_type` is unknown or `num_labels` does not suit it (None: multi-label only,
    the count then comes from the data)."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    if num_labels is None:
        if task_type != "multilabel":
            raise ValueError(
                f"a {task_type} task needs num_labels (only multi-label counts are read from data)"
            )
        return
    if task_type == "binary" and num_labels != 2:
        raise ValueError(f"a binary task has num_labels 2, got {num_labels}")
    if task_type in ("multiclass", "multilabel") and num_labels < 2:
        raise ValueError(f"a {task_type} task needs num_labels >= 2, got {num_labels}")
    if task_type == "regression" and num_labels != 1:
        raise ValueError(f"a regression task has one target (num_labels 1), got {num_labels}")


def label_dtype(task_type: str) -> np.dtype:
    """Storage dtype of parsed labels: int64 class ids, float32 vectors or targets."""
    return np.dtype(np.int64) if task_type in ("binary", "multiclass") else np.dtype(np.float32)


def parse_label(text: str, task_type: str, num_labels: int) -> int | list[float] | float:
    """One label field as a class id (binary, multiclass), a 0/1 vector (multilabel) or a float.

    Multi-label fields are either a 0/1 vector of length `num_labels` or the list of active label
    indices, joined by ``;`` (commas or spaces also accepted), e.g. ``0;1;0`` or ``1``. A field of
    exactly `num_labels` zeros and ones is a vector; a longer or shorter 0/1 run (over 2 values)
    is refused as a vector of the wrong length.
    """
    text = text.strip()
    if not text:
        raise LabelError("empty label")
    if task_type in ("binary", "multiclass"):
        return _class_id(text, num_labels)
    if task_type == "multilabel":
        return _multilabel(text, num_labels)
    return _finite_float(text)


def _class_id(text: str, num_labels: int) -> int:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value.is_integer() or not 0 <= value < num_labels:
        raise LabelError(f"label {text!r} is outside the declared classes 0..{num_labels - 1}")
    return int(value)


def vector_width(text: str) -> int:
    """Length of a multi-label field written as a 0/1 vector (raises for an index list)."""
    parts = [p for p in _SEPARATORS.split(text.strip()) if p]
    if len(parts) < 2 or not all(p in ("0", "1") for p in parts):
        raise LabelError(f"label {text!r} is not a 0/1 vector, so the label count cannot be read from it")
    return len(parts)


def _multilabel(text: str, num_labels: int) -> list[float]:
    parts = [p for p in _SEPARATORS.split(text) if p]
    binary = all(p in ("0", "1") for p in parts)
    if binary and len(parts) == num_labels:
        return [float(p) for p in parts]
    if binary and len(parts) > 2:
        raise LabelError(
            f"label {text!r} reads as a 0/1 vector of {len(parts)} values, expected num_labels={num_labels}"
        )
    vector = [0.0] * num_labels
    for i in (_class_id(p, num_labels) for p in parts):
        vector[i] = 1.0
    return vector


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LabelError(f"regression target {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError(f"regression target {text!r} is not finite (NaN or infinity)")
    return value


def parse_fields(
    text: str, task_type: str, num_labels: int, vector_sep: str | None = None
) -> int | list[float] | float:
    """`parse_label`, plus the PGB FASTA rule: a field holding `vector_sep` (``|``) is a full
    0/1 vector of exactly `num_labels` values (multi-label only)."""
    if vector_sep is None or vector_sep not in text:
        return parse_label(text, task_type, num_labels)
    fields = [f.strip() for f in text.split(vector_sep)]
    if task_type != "multilabel":
        raise LabelError(f"{len(fields)} label fields {text!r}; a {task_type} task has one label per record")
    if len(fields) != num_labels:
        raise LabelError(f"label vector {text!r} has {len(fields)} values, expected num_labels={num_labels}")
    bad = next((f for f in fields if f not in ("0", "1")), None)
    if bad is not None:
        raise LabelError(f"label vector {text!r} holds {bad!r}; expected 0 or 1 values")
    return [float(f) for f in fields]


def parse_labels(
    texts: Sequence[str | bytes], task_type: str, num_labels: int, vector_sep: str | None = None
) -> np.ndarray:
    """Label fields of many rows as one `label_dtype` array ((N,) or (N, num_labels)).

    The common shapes (one digit per class id, ``0|1|...``/``0;1;...`` vectors, plain numbers)
    are parsed vectorised; anything else goes through `parse_fields` row by row, whose errors
    carry the row index.
    """
    fast = _fast_labels(texts, task_type, num_labels)
    if fast is not None:
        return fast
    parsed = []
    for row, text in enumerate(texts):
        text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        try:
            parsed.append(parse_fields(text, task_type, num_labels, vector_sep))
        except LabelError as err:
            raise LabelError(str(err), row) from None
    return np.asarray(parsed, dtype=label_dtype(task_type)).reshape(_shape(len(texts), task_type, num_labels))


def _shape(n: int, task_type: str, num_labels: int) -> tuple[int, ...]:
    return (n, num_labels) if task_type == "multilabel" else (n,)


def _fixed_width(texts: Sequence[str | bytes], width: int) -> np.ndarray | None:
    """(N, width) uint8 of the fields when every one is ASCII of exactly `width` characters."""
    if not texts or any(len(t) != width for t in texts):
        return None
    joined = b"".join(texts) if isinstance(texts[0], bytes) else "".join(texts).encode("utf-8")  # type: ignore[arg-type]
    if len(joined) != len(texts) * width:  # a non-ASCII character
        return None
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(texts), width)


def _fast_labels(texts: Sequence[str | bytes], task_type: str, num_labels: int) -> np.ndarray | None:
    if task_type == "regression":
        try:
            values = np.asarray(texts).astype(np.float64)
        except (ValueError, TypeError):
            return None
        return values.astype(np.float32) if values.ndim == 1 and np.isfinite(values).all() else None
    if task_type in ("binary", "multiclass"):
        digits = _fixed_width(texts, 1)
        if digits is None:
            return None
        ids = digits[:, 0].astype(np.int64) - ord("0")
        return ids if ((ids >= 0) & (ids < num_labels)).all() else None
    cells = _fixed_width(texts, 2 * num_labels - 1)
    if cells is None:
        return None
    values, separators = cells[:, 0::2], cells[:, 1::2]
    one_separator = np.isin(separators, np.frombuffer(b"|;,", dtype=np.uint8)).all() and (
        separators == separators[0, 0]
    ).all()
    if not one_separator or not np.isin(values, (ord("0"), ord("1"))).all():
        return None
    return (values - ord("0")).astype(np.float32)
