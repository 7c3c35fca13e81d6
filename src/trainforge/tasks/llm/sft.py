"""Supervised fine-tuning of a causal LM on conversations, prompt/completion pairs, alpaca rows or plain text.

Example (``examples/llm_sft/smollm2_lora.yaml``)::

    task: llm_sft
    model: {name: path/to/SmolLM2-135M-Instruct.Q4_1.gguf}
    data: {source: examples/llm_sft/data/chat.jsonl, columns: {messages: messages}, eval_fraction: 0.1}
    training: {num_train_epochs: 2, learning_rate: 2.0e-4, per_device_train_batch_size: 4}
    peft: {enabled: true, merge_adapter: true}
    params: {block_size: 256}

Run it with ``trainforge train examples/llm_sft/smollm2_lora.yaml``; talk to the result with
``trainforge chat runs/llm_sft``. The loss covers assistant/completion tokens only (``completion_only_loss``),
each assistant turn ends with EOS, and eval loss plus perplexity are reported on the evaluation split.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import pandas as pd
from pydantic import Field

from trainforge.config.sections import ADVANCED, BASIC
from trainforge.errors import DataError
from trainforge.tasks.llm import _data
from trainforge.tasks.llm._base import LLM_SPEC
from trainforge.tasks.llm._params import LLMParams, autotrain_shape
from trainforge.tasks.llm._tokenizer import require_template_for, set_up_tokenizer
from trainforge.tasks.llm._trainers import LLMPrepared, encoded_prepared, sft_trainer
from trainforge.tasks.spec import Analysis, Column, RunContext, TrainerInputs

# ---------------------------------------------------------------------------------------------------- params


class SFTParams(LLMParams):
    """Parameters of ``llm_sft``."""

    completion_only_loss: bool = Field(
        True,
        description="Train on assistant/completion tokens only (prompt tokens masked); false trains on every token.",
        json_schema_extra=BASIC,
    )
    packing: bool = Field(
        False, description="Pack several examples into each block_size sequence.", json_schema_extra=BASIC
    )
    packing_strategy: Literal["auto", "bfd", "wrapped"] = Field(
        "auto",
        description=(
            "bfd: whole examples, best-fit, padding-free (position ids restart per example); wrapped: concatenate "
            "and cut, as the reference does (examples attend to each other). auto: bfd on CPU or with "
            "flash_attention_2; wrapped on a GPU without a variable-length attention kernel, where padding-free "
            "batches fall back to a dense masked attention and train slower than the reference."
        ),
        json_schema_extra=ADVANCED,
    )


COLUMNS = (
    Column("messages", "conversation: list of {role, content} turns, or that list as JSON", False, kind="messages"),
    Column("text", "plain text, or a conversation (list of turns / JSON)", required=False),
    Column("prompt", "prompt of a prompt/completion pair", required=False),
    Column("completion", "completion of a prompt/completion pair", required=False, role="target"),
    Column("instruction", "alpaca instruction", required=False),
    Column("input", "alpaca input (optional context)", required=False),
    Column("output", "alpaca output (the answer)", required=False, role="target"),
)

# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Detect the data shape, check every row, encode with the run's template and count over-long rows.

    Counting the rows longer than ``block_size`` needs their tokens, so the encoded rows of each split travel in
    ``Analysis.facts["encoded"]`` for ``prepare`` (the splits themselves are only read: no second tokenisation).
    """
    config = ctx.config
    data_format = _data.detect_sft_format(splits.train, splits.train_origin)
    require_template_for(config, data_format)
    normalized = {}
    for name, frame, origin in splits.present():
        found = _data.detect_sft_format(frame, origin)
        if found != data_format:
            raise DataError(
                f"{origin}: rows in the {found} shape, but the training rows ({splits.train_origin}) are "
                f"{data_format}: give every split the same shape"
            )
        normalized[name] = (_data.normalize_sft(frame, data_format, origin), origin)
    notes = [f"data format: {data_format}"] + set_up_tokenizer(ctx, data_format)
    tokenizer = ctx.processor
    encoded_splits = {}
    for name, (frame, origin) in normalized.items():
        encoded, counts = _encode(frame, data_format, tokenizer, config)
        if not encoded:
            raise DataError(
                f"{origin}: no row is left to train on after fitting params.block_size "
                f"{config.params.block_size} ({counts['dropped']} dropped); "
                "raise block_size or use truncation: truncate"
            )
        if name == "train":
            notes.append("example (trained tokens in ⟦ ⟧): " + _data.show_example(tokenizer, *encoded[0]))
        notes += _count_notes(name, counts, config)
        encoded_splits[name] = pd.DataFrame(
            {"input_ids": [i for i, _ in encoded], "labels": [label for _, label in encoded]}
        )
    if config.params.packing:
        notes.append(
            f"packing: {packing_strategy(config.params)} (packing_strategy: {config.params.packing_strategy})"
        )
    return Analysis("causal_lm", facts={"data_format": data_format, "encoded": encoded_splits}, notes=tuple(notes))


def _encode(frame, data_format, tokenizer, config):
    params = config.params
    encoded = [
        _data.encode_sft_row(row, data_format, tokenizer, params, params.completion_only_loss)
        for row in _data.as_records(frame)
    ]
    return _data.fit_block(encoded, params.block_size, params.truncation == "drop")


def _count_notes(split: str, counts: dict[str, int], config) -> list[str]:
    notes = []
    if counts["too_long"]:
        action = "dropped" if config.params.truncation == "drop" else "truncated"
        notes.append(
            f"{split}: {counts['too_long']} row(s) longer than block_size {config.params.block_size} were {action}"
        )
    empty = counts["dropped"] - (counts["too_long"] if config.params.truncation == "drop" else 0)
    if empty:
        notes.append(f"{split}: {empty} row(s) dropped: truncation left no completion tokens to learn")
    return notes


# ---------------------------------------------------------------------------------------------------- prepare


def prepare(ctx: RunContext, splits) -> LLMPrepared:
    """Datasets of input_ids/labels (encoded by ``analyze``); packed into block_size sequences when asked."""
    from datasets import Dataset

    config = ctx.config

    def dataset(frame):
        data = Dataset.from_dict({"input_ids": list(frame["input_ids"]), "labels": list(frame["labels"])})
        if config.params.packing:
            from trl.data_utils import pack_dataset

            data = pack_dataset(data, config.params.block_size, packing_strategy(config.params))
        return data

    return encoded_prepared(ctx, dataset)


def packing_strategy(params) -> str:
    """Resolve ``auto`` to a packing strategy for this machine.

    Measured on an H200 (benchmarks/llm_sft.py, 1B Llama, sequence 2048, SDPA): padding-free bfd ran at 0.85x the
    reference's tokens/s while wrapped ran at 1.48-2.33x; on CPU bfd was the faster one.
    """
    if params.packing_strategy != "auto":
        return params.packing_strategy
    import torch

    if not torch.cuda.is_available() or params.attn_implementation == "flash_attention_2":
        return "bfd"
    return "wrapped"


# ---------------------------------------------------------------------------------------------------- trainer


def make_trainer(inputs: TrainerInputs):
    """TRL ``SFTTrainer`` on our encoded data, packed when asked."""
    params = inputs.ctx.config.params
    return sft_trainer(inputs, packing=params.packing, packing_strategy=packing_strategy(params))


# ---------------------------------------------------------------------------------------------------- spec

SPEC = dataclasses.replace(
    LLM_SPEC,
    name="llm_sft",
    summary="Supervised fine-tuning of a causal LM (chat, prompt/completion, alpaca or text), full or LoRA/QLoRA.",
    params=SFTParams,
    columns=COLUMNS,
    analyze=analyze,
    prepare=prepare,
    make_trainer=make_trainer,
    example={
        "model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct"},
        "data": {"source": "data/chat.jsonl", "columns": {"messages": "messages"}},
        "peft": {"enabled": True},
        "params": {"block_size": 512},
    },
    training_defaults={"learning_rate": 2e-4, "num_train_epochs": 1.0},
    autotrain=autotrain_shape("sft", ("llm-sft", "llm_sft"), {"text_column": "text"}),
)
