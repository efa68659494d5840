"""Models shipped inside the package, reachable by a short name wherever a model path is accepted.

Each lives in ``plantbimoe/models/<name>/`` in the released layout (``config.json`` +
``model.safetensors``) beside its model card (``README.md``, written from the run's own
``summary.json`` by ``python -m tasks.model_card``). ``init_from=arabidopsis-tiny`` and
``plantbimoe embed arabidopsis-tiny ...`` read the same folder. A path that exists always wins
over a short name.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).parent / "models"


def shipped_models() -> list[str]:
    """The short names of the models in this installation."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "config.json").is_file())


def resolve_model(source: str | Path) -> Path:
    """`source` as a path: itself when it exists, else the shipped model of that name.

    Raises FileNotFoundError naming the shipped models when it is neither."""
    path = Path(source)
    if path.exists():
        return path
    if path.name == str(source) and (SHIPPED_DIR / path.name / "config.json").is_file():
        return SHIPPED_DIR / path.name
    names = ", ".join(shipped_models()) or "none"
    raise FileNotFoundError(
        f"model not found: {source} (neither a path nor a shipped model; shipped: {names})"
    )
