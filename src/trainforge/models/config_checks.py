"""Checks of a run's settings against the base model's *config* (never its weights), run by ``validate``.

Each mistake caught here would otherwise surface only after the weights have loaded, in an error that names no
setting: a sequence length beyond the model's absolute position embeddings (a tensor-shape error at the first long
text), or LoRA target modules that the model lacks, that PEFT cannot wrap, or that the trainer refuses.

What applies is read from the task's params generically: any ``max_length``/``block_size`` field caps the tokens
per sequence; ``peft`` with a list of ``target_modules`` names the modules LoRA adapts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainforge.errors import ConfigError

if TYPE_CHECKING:
    from trainforge.config.schema import RunConfig
    from trainforge.tasks.spec import TaskSpec

# Params fields that cap the tokens of one sequence (text tasks: max_length; LLM tasks: block_size).
LENGTH_FIELDS = ("max_length", "block_size")

# Model types whose position ids start after the padding index (RoBERTa's scheme): the first pad_token_id + 1 of
# max_position_embeddings never hold a token (514 -> 512 usable positions).
_PADDING_OFFSET_MODEL_TYPES = frozenset(
    {
        "camembert",
        "data2vec-text",
        "ibert",
        "layoutlmv3",
        "lilt",
        "longformer",
        "luke",
        "markuplm",
        "mpnet",
        "roberta",
        "roberta-prelayernorm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "xmod",
    }
)

# Tasks whose TRL trainer (trl 1.16: SFTTrainer, DPOTrainer) computes log-probabilities from the output layer's weight
# directly and so refuses a LoRA adapter on that layer, once the model has loaded; their trainers leave the layer out
# (OUTPUT_LAYER_REFUSED_BY in tasks/llm/_trainers.py: keep the two in step). ORPO (trl.experimental) and the reward
# model's scoring head run the layer normally: an adapter there trains, so they are not listed.
_FUSED_OUTPUT_TRAINERS = {"llm_sft": "SFTTrainer", "llm_generic": "SFTTrainer", "llm_dpo": "DPOTrainer"}


def check_against_model_config(config: RunConfig, spec: TaskSpec) -> list[str]:
    """Check sequence lengths and LoRA target modules against the base model's config, loading no weights.

    The model's ``config.json`` is read with ``AutoConfig`` (``model.revision`` and ``model.trust_remote_code`` as
    configured); module names come from the model built on the meta device (no memory, no weights).

    Args:
        config: The validated run config; its ``params`` and ``peft`` fields say what applies.
        spec: The run's task: its ``pipeline_tag`` picks the model class (causal LM or sequence classifier) whose
            modules LoRA targets, its ``name`` whether the trainer refuses an adapter on the output layer.

    Returns:
        Notes for the user: a rotary model asked for longer sequences than it was trained on; the output layer
        (``lm_head``) left out of LoRA's targets for a trainer that cannot train an adapter there.

    Raises:
        ConfigError: Every problem by dotted key: a length beyond the model's absolute position embeddings; a LoRA
            target module the model lacks or that LoRA cannot wrap, or targets naming only the output layer (each
            message lists the module names LoRA can adapt); a model config that cannot be read or built.
    """
    params = config.params
    lengths = [(name, value) for name in LENGTH_FIELDS if isinstance(value := getattr(params, name, None), int)]
    targets = _lora_targets(config)
    if not lengths and targets is None:
        return []
    if _is_gguf(config.model.name):
        # transformers reads a GGUF file's config by parsing the whole file (6 s for the 98 MB SmolLM2-135M Q4_1):
        # too slow for validate, so GGUF models meet these checks only when training loads them.
        return []
    model_config = _read_config(config)
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    for name, value in lengths:
        _check_length(name, value, params, model_config, problems, notes)
    if targets is not None:
        problems += _check_lora_targets(targets, model_config, config, spec, notes)
    if problems:
        raise ConfigError(problems)
    return notes


# ---------------------------------------------------------------------------------------------------- model config


def _is_gguf(name: str) -> bool:
    """A ``.gguf`` file, or a folder without ``config.json`` holding one (as the LLM loader reads them)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path.suffix == ".gguf"
    return path.is_dir() and not (path / "config.json").exists() and any(path.glob("*.gguf"))


def _read_config(config: RunConfig) -> Any:
    """The model's ``PretrainedConfig``.

    Raises:
        ConfigError: ``config.json`` is unreadable or names an architecture this transformers does not know (the
            weights would fail to load the same way).
    """
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
        )
    # OSError: a missing or corrupt config.json; ValueError: an unknown model_type, or remote code not trusted.
    except (OSError, ValueError) as exc:
        raise ConfigError([("model.name", f"cannot read the model's config: {exc}")]) from exc


# ---------------------------------------------------------------------------------------------------- lengths


def _check_length(
    name: str, value: int, params: Any, model_config: Any, problems: list[tuple[str, str]], notes: list[str]
) -> None:
    """A length beyond the model's positions: an error for absolute embeddings, a note for rotary/relative ones."""
    limit, source = position_limit(model_config)
    if limit is None or value <= limit:
        return
    key = f"params.{name}"
    kind = relative_positions(model_config)
    if kind is not None:
        notes.append(
            f"{key} {value} is beyond the {limit} positions the model was trained on ({source}); its {kind} position "
            f"embeddings run longer sequences, but quality past {limit} tokens is not assured ({key}: {limit} keeps "
            "within them)"
        )
        return
    message = (
        f"{value} tokens, but the model ({model_config.model_type}) has absolute position embeddings for {limit} "
        f"tokens ({source}): an input longer than {limit} tokens stops training with a tensor-shape error. "
        f"Set {key} to {limit} or less"
    )
    field = type(params).model_fields.get(name)
    if field is not None and value == field.default:
        # Not the user's choice: every released encoder has at least 512 positions, so only tiny test models fall
        # below the default, and refusing the `trainforge init` output for them would block nothing real.
        notes.append(
            f"{key} (default {value}) is beyond the model's {limit} positions ({source}): inputs are cut at {limit} "
            "tokens"
        )
        return
    problems.append((key, message))


def position_limit(model_config: Any) -> tuple[int | None, str]:
    """The most tokens the model's position embeddings hold, and where that figure comes from (for messages)."""
    # GPT-2 and others map max_position_embeddings onto their own attribute (n_positions): name the one in the file.
    attribute = getattr(model_config, "attribute_map", {}).get("max_position_embeddings", "max_position_embeddings")
    size = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return None, attribute
    source = f"{attribute}: {size} in its config.json"
    if model_config.model_type in _PADDING_OFFSET_MODEL_TYPES:
        pad = getattr(model_config, "pad_token_id", None)
        offset = (pad if isinstance(pad, int) else 0) + 1
        return size - offset, f"{source}, of which the first {offset} are reserved"
    return size, source


def relative_positions(model_config: Any) -> str | None:
    """'rotary', 'ALiBi' or 'relative' when positions are not an absolute table (longer inputs still run)."""
    rotary = ("rope_parameters", "rope_theta", "rope_scaling", "rotary_dim")
    if any(getattr(model_config, name, None) for name in rotary):
        return "rotary"
    if getattr(model_config, "alibi", False):
        return "ALiBi"
    if getattr(model_config, "relative_attention", False) and not getattr(model_config, "position_biased_input", True):
        return "relative"
    return None


# ---------------------------------------------------------------------------------------------------- LoRA


def _lora_targets(config: RunConfig) -> list[str] | None:
    """The module names LoRA is asked to adapt; None without LoRA or for 'all-linear' (PEFT picks those)."""
    if not config.peft.enabled:
        return None
    targets = config.peft.target_modules
    if not isinstance(targets, list | tuple):
        return None
    return [str(target) for target in targets]


def _check_lora_targets(
    targets: list[str], model_config: Any, config: RunConfig, spec: TaskSpec, notes: list[str]
) -> list[tuple[str, str]]:
    """Match each target as PEFT does (the full module name, or its last dotted parts) and check what it finds.

    The output layer, for a trainer that refuses an adapter there, is left out with a note (the LLM trainers drop it,
    ``tasks/llm/_trainers.py``); an error only when nothing else is left to adapt.
    """
    model = _empty_model(model_config, config, spec)
    if model is None:
        return []
    import torch
    from transformers.pytorch_utils import Conv1D

    # The layer types PEFT's LoRA wraps (peft/tuners/lora/model.py, _create_new_module); anything else is refused.
    wrappable = (
        torch.nn.Linear,
        torch.nn.Embedding,
        torch.nn.Conv1d,
        torch.nn.Conv2d,
        torch.nn.Conv3d,
        torch.nn.MultiheadAttention,
        Conv1D,
    )
    modules = [(name, module) for name, module in model.named_modules() if name]
    output = model.get_output_embeddings()
    output_name = next((name for name, module in modules if module is output), None)
    fused_trainer = _FUSED_OUTPUT_TRAINERS.get(spec.name)
    refused = output_name if fused_trainer else None
    adaptable = list(
        dict.fromkeys(
            name.rsplit(".", 1)[-1] for name, module in modules if isinstance(module, wrappable) and name != refused
        )
    )
    listing = f"LoRA can adapt these modules of {type(model).__name__}: {', '.join(adaptable)} (or use 'all-linear')"
    wrong, dropped = [], []
    for target in targets:
        found = [(name, module) for name, module in modules if name == target or name.endswith(f".{target}")]
        unwrappable = [(name, module) for name, module in found if not isinstance(module, wrappable)]
        if not found:
            wrong.append(f"{target!r} names no module of the model")
        elif unwrappable:
            name, module = unwrappable[0]
            wrong.append(
                f"{target!r} names {type(module).__name__} modules (e.g. {name}), which LoRA cannot wrap (it adapts "
                "Linear, Embedding and convolution layers)"
            )
        elif refused is not None and any(name == refused for name, _ in found):
            dropped.append(target)
    why = (
        f"the model's output layer: TRL's {fused_trainer} computes log-probabilities from {refused}.weight "
        "directly, so a LoRA adapter there would never be trained"
    )
    if dropped and len(dropped) == len(targets):
        wrong.append(f"{', '.join(map(repr, dropped))} is {why}, and nothing else is left to adapt")
    elif dropped:
        kept = [target for target in targets if target not in dropped]
        notes.append(
            f"peft.target_modules: {', '.join(map(repr, dropped))} left out, as it is {why}; LoRA adapts "
            f"{', '.join(kept)}"
        )
    if not wrong:
        return []
    return [("peft.target_modules", f"{'; '.join(wrong)}. {listing}")]


def _empty_model(model_config: Any, config: RunConfig, spec: TaskSpec) -> Any:
    """The task's model class built on the meta device (module names and types only).

    Raises:
        ConfigError: The model's architecture has no class for this task (e.g. an encoder for a causal-LM task).
    """
    import transformers
    from accelerate import init_empty_weights

    # The head class each pipeline tag trains; other tasks (embeddings, ...) adapt the bare encoder's modules.
    auto = {
        "text-generation": "AutoModelForCausalLM",
        "text-classification": "AutoModelForSequenceClassification",
        "token-classification": "AutoModelForTokenClassification",
        "question-answering": "AutoModelForQuestionAnswering",
        "text2text-generation": "AutoModelForSeq2SeqLM",
        "translation": "AutoModelForSeq2SeqLM",
        "summarization": "AutoModelForSeq2SeqLM",
    }
    model_class = getattr(transformers, auto.get(spec.pipeline_tag, "AutoModel"))
    try:
        with init_empty_weights():
            return model_class.from_config(model_config, trust_remote_code=config.model.trust_remote_code)
    # ValueError: transformers has no such class for this architecture ("Unrecognized configuration class").
    except ValueError as exc:
        raise ConfigError(
            [("model.name", f"{model_config.model_type} models cannot be used for {spec.name}: {exc}")]
        ) from exc


# ---------------------------------------------------------------------------------------------------- vocabulary


def check_tokenizer_fits(tokenizer: Any, config: RunConfig) -> None:
    """The tokenizer can feed the model: every token id has an embedding row, and batches can be padded.

    For tasks that keep the model's embeddings as they are (encoders: classification, tagging, QA, seq2seq). LLM runs
    resize the embeddings to the tokenizer (a template's added tokens) and call only the padding half
    (``check_padding``).

    Raises:
        ConfigError: Token ids beyond the model's embedding matrix (the first batch holding one dies with "index out
            of range in self"), or no pad token and no EOS to pad with (the first padded batch dies).
    """
    if _is_gguf(config.model.name):
        return
    model_config = _read_config(config)
    rows = getattr(model_config, "vocab_size", None) or getattr(
        getattr(model_config, "get_text_config", lambda: None)(), "vocab_size", None
    )
    problems = []
    if isinstance(rows, int) and len(tokenizer) > rows:
        problems.append(
            (
                "model.name",
                f"the tokenizer in {config.model.name} has {len(tokenizer)} tokens but the model's embeddings have "
                f"{rows} rows (config.json vocab_size): token ids {rows} and above would crash training with 'index "
                "out of range'. The tokenizer files and the weights come from different models: save the model's "
                "own tokenizer beside its weights",
            )
        )
    problems += padding_problems(tokenizer, config)
    if problems:
        raise ConfigError(problems)


def padding_problems(tokenizer: Any, config: RunConfig) -> list[tuple[str, str]]:
    """A tokenizer with no pad token (nor an EOS to pad with) cannot batch rows of different lengths."""
    if tokenizer.pad_token is not None or tokenizer.eos_token is not None:
        return []
    return [
        (
            "model.name",
            f"the tokenizer in {config.model.name} has neither a pad token nor an EOS token to pad with, so batches "
            "of different lengths cannot be formed: add one (tokenizer.add_special_tokens({'pad_token': '[PAD]'}), "
            "then save it beside the model; resize the embeddings if the token is new)",
        )
    ]
