"""Preference data shared by DPO, ORPO and reward modelling: check rows, render them with the run's template."""

from __future__ import annotations

from trainforge.errors import DataError
from trainforge.tasks.llm import _data
from trainforge.tasks.llm._shared import configure_tokenizer, require_template_for, tokenizer_for
from trainforge.tasks.spec import Column, LabelInfo

COLUMNS = (
    Column(
        "prompt",
        "the prompt: a string or a list of turns (optional when chosen/rejected are whole conversations)",
        required=False,
    ),
    Column("chosen", "the preferred answer: a string or a list of turns"),
    Column("rejected", "the dispreferred answer: a string or a list of turns"),
)
AUTOTRAIN_COLUMNS = {"text_column": "chosen", "rejected_text_column": "rejected", "prompt_text_column": "prompt"}
# Shared by llm_dpo, llm_orpo and llm_reward: the `trainforge init` example and their training defaults
# (eval_on_start records the starting reward accuracy that later evaluations are compared with).
EXAMPLE = {
    "model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct"},
    "data": {
        "source": "data/pairs.jsonl",
        "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
    },
    "params": {"peft": True, "block_size": 512},
}
TRAINING_DEFAULTS = {"learning_rate": 5e-5, "num_train_epochs": 1.0, "eval_on_start": True}


def analyze(splits, config) -> LabelInfo:
    """Check every pair, render it with the run's template and count pairs longer than block_size."""
    train = _data.normalize_preference(splits.train, splits.train_origin)
    splits.train, conversational = train.frame, train.conversational
    data_format = "conversational" if conversational else "prompt_chosen_rejected"
    require_template_for(config, data_format)
    tokenizer, notes = tokenizer_for(config, "messages" if conversational else "preference")
    notes = [f"data format: preference pairs ({'lists of turns' if conversational else 'strings'})"] + notes
    notes += train.notes
    if splits.eval is not None:
        evaluation = _data.normalize_preference(splits.eval, splits.eval_origin)
        splits.eval, eval_conversational = evaluation.frame, evaluation.conversational
        notes += evaluation.notes
        if eval_conversational != conversational:
            raise DataError(
                f"{splits.eval_origin}: the evaluation pairs are not in the training pairs' shape ({data_format})"
            )
    for name in ("train", "eval"):
        frame = getattr(splits, name)
        if frame is None:
            continue
        rendered = [
            _data.render_preference(row, tokenizer, config.params.add_eos_token) for row in _data.as_records(frame)
        ]
        lengths = _data.preference_lengths(rendered, tokenizer)
        too_long = [n > config.params.block_size for n in lengths]
        if any(too_long):
            action = "dropped" if config.params.truncation == "drop" else "truncated (answers cut at the end)"
            notes.append(
                f"{name}: {sum(too_long)} pair(s) longer than block_size {config.params.block_size} are {action}"
            )
        keep = [not t for t in too_long] if config.params.truncation == "drop" else [True] * len(rendered)
        if not any(keep):
            raise DataError(
                f"{getattr(splits, name + '_origin')}: every pair is longer than params.block_size; raise it"
            )
        frame = frame.assign(**{k: [r[k] for r in rendered] for k in ("prompt", "chosen", "rejected")})
        setattr(splits, name, frame[keep])
        if name == "train":
            first = rendered[0]
            notes.append(
                f"example: prompt {first['prompt']!r} | chosen {first['chosen']!r} | rejected {first['rejected']!r}"[
                    :700
                ]
            )
    return LabelInfo("preference", (data_format,), notes=tuple(notes))


def configure(tokenizer, config, labels: LabelInfo) -> None:
    """Set the driver's tokenizer up as ``analyze`` did."""
    configure_tokenizer(tokenizer, config, "messages" if labels.names[0] == "conversational" else "preference")


def template_format(labels: LabelInfo) -> str:
    """The format name ``configure_tokenizer`` decides templates by."""
    return "messages" if labels.names[0] == "conversational" else "preference"


def datasets(splits):
    """Train/eval ``Dataset``s of rendered prompt/chosen/rejected strings."""
    from datasets import Dataset

    def make(frame):
        return Dataset.from_dict({k: list(frame[k]) for k in ("prompt", "chosen", "rejected")})

    return make(splits.train), make(splits.eval) if splits.eval is not None else None
