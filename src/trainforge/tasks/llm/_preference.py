"""Preference data shared by DPO, ORPO and reward modelling: check rows, render them with the run's template."""

from __future__ import annotations

import dataclasses

from trainforge.errors import DataError
from trainforge.tasks.llm import _data
from trainforge.tasks.llm._base import LLM_SPEC
from trainforge.tasks.llm._tokenizer import require_template_for, set_up_tokenizer
from trainforge.tasks.llm._trainers import LLMPrepared, encoded_prepared
from trainforge.tasks.spec import Analysis, Column, RunContext

COLUMNS = (
    Column(
        "prompt",
        "the prompt: a string or a list of turns (optional when chosen/rejected are whole conversations)",
        required=False,
    ),
    Column("chosen", "the preferred answer: a string or a list of turns", role="target"),
    Column("rejected", "the dispreferred answer: a string or a list of turns", role="target"),
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
    "peft": {"enabled": True},
    "params": {"block_size": 512},
}
TRAINING_DEFAULTS = {"learning_rate": 5e-5, "num_train_epochs": 1.0, "eval_on_start": True}


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check every pair, render it with the run's template and count pairs longer than block_size."""
    config = ctx.config
    normalized = {
        name: (_data.normalize_preference(frame, origin), origin) for name, frame, origin in splits.present()
    }
    conversational = normalized["train"][0].conversational
    data_format = "conversational" if conversational else "prompt_chosen_rejected"
    require_template_for(config, data_format)
    notes = [f"data format: preference pairs ({'lists of turns' if conversational else 'strings'})"]
    notes += set_up_tokenizer(ctx, "messages" if conversational else "preference")
    tokenizer = ctx.processor
    for pairs, origin in normalized.values():
        notes += pairs.notes
        if pairs.conversational != conversational:
            raise DataError(f"{origin}: these pairs are not in the training pairs' shape ({data_format})")
    rendered_splits = {}
    for name, (pairs, origin) in normalized.items():
        frame = pairs.frame
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
            raise DataError(f"{origin}: every pair is longer than params.block_size; raise it")
        frame = frame.assign(**{k: [r[k] for r in rendered] for k in ("prompt", "chosen", "rejected")})
        rendered_splits[name] = frame[keep]
        if name == "train":
            first = rendered[0]
            notes.append(
                f"example: prompt {first['prompt']!r} | chosen {first['chosen']!r} | rejected {first['rejected']!r}"[
                    :700
                ]
            )
    return Analysis("preference", facts={"data_format": data_format, "encoded": rendered_splits}, notes=tuple(notes))


def prepare(ctx: RunContext, splits) -> LLMPrepared:
    """Rendered prompt/chosen/rejected strings (``facts["encoded"]``), as datasets; TRL tokenizes them."""
    from datasets import Dataset

    def make(frame):
        return Dataset.from_dict({k: list(frame[k]) for k in ("prompt", "chosen", "rejected")})

    return encoded_prepared(ctx, make)


# DPO, ORPO and reward modelling read the same pairs the same way; each replaces its params, trainer and metrics.
PREFERENCE_SPEC = dataclasses.replace(
    LLM_SPEC,
    columns=COLUMNS,
    analyze=analyze,
    prepare=prepare,
    example=EXAMPLE,
    training_defaults=TRAINING_DEFAULTS,
)
