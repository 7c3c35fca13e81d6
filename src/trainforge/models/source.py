"""Where a base model comes from, checked before anything loads: a local folder or file, or a Hub id.

Reads only names and file headers (never weights), so ``validate`` can run it.
"""

from __future__ import annotations

from pathlib import Path

from trainforge.config.schema import RunConfig
from trainforge.errors import ConfigError


def check_model_source(config: RunConfig) -> None:
    """The base model must be a local folder/file, or a Hub id that is reachable or already cached."""
    name = config.model.name
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").exists() and not any(path.glob("*.gguf")):
            raise ConfigError([("model.name", f"{path} is a folder without config.json: not a saved model")])
        if path.is_dir():
            check_weight_files(path, "model.name")
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ConfigError([("model.name", f"{name!r} is neither an existing local path nor a Hub id (org/name)")])
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as exc:
        reason = str(exc).split(".")[0]
        raise ConfigError(
            [("model.name", f"{name!r} is neither an existing local path nor a valid Hub id (org/name): {reason}")]
        ) from None

    if constants.HF_HUB_OFFLINE and not isinstance(
        try_to_load_from_cache(name, "config.json", revision=config.model.revision), str
    ):
        raise ConfigError(
            [
                (
                    "model.name",
                    f"{name!r} is not a local folder and not in the Hub cache, "
                    "and the Hub is offline (HF_HUB_OFFLINE=1)",
                )
            ]
        )


def check_weight_files(folder: Path, key: str) -> None:
    """Every ``*.safetensors`` file in ``folder`` must have a readable header (read without loading the weights).

    Raises:
        ConfigError: Naming ``key`` and the unreadable file (a truncated download, or not a safetensors file).
    """
    from safetensors import SafetensorError, safe_open

    for weights in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="np"):
                pass
        except (SafetensorError, OSError) as exc:
            raise ConfigError(
                [(key, f"{weights} is not a readable safetensors file ({exc}); re-download or re-save the model")]
            ) from None
