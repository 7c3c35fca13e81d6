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


# Files a saved tokenizer leaves (fast, slow, SentencePiece, BPE); one of them is enough.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def check_tokenizer_files(config: RunConfig) -> None:
    """A local model folder must hold its tokenizer; without one transformers builds an empty vocabulary.

    The model would then train and predict on ``[UNK]`` tokens only (every input the same) and finish "done".

    Raises:
        ConfigError: Naming ``model.name`` and the files looked for.
    """
    path = Path(config.model.name).expanduser()
    if not path.is_dir() or any(path.glob("*.gguf")):
        return
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(
            [
                (
                    "model.name",
                    f"{path} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}): save it beside the model "
                    "with tokenizer.save_pretrained(folder), or point model.name at a folder that has one",
                )
            ]
        )
