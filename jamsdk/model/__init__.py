"""The JAM model in PyTorch (needs the ``train`` extra: torch)."""

from jamsdk._lazy import require

require("torch")

from jamsdk.model.jam import MODES, JamModel, build_model  # noqa: E402

__all__ = ["MODES", "JamModel", "build_model"]
