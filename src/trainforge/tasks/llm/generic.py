"""Generic causal-LM training (continued pre-training): texts concatenated and cut into block_size chunks.

Example (``examples/llm_generic/smollm2_corpus.yaml``)::

    task: llm_generic
    model: {name: path/to/model}
    data: {source: examples/llm_generic/data/corpus.jsonl, columns: {text: text}, eval_fraction: 0.1}
    params: {block_size: 128}

Run it with ``trainforge train examples/llm_generic/smollm2_corpus.yaml``. Each text ends with EOS before
concatenation; the last partial chunk is dropped (counted). Evaluation reports loss and perplexity.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from trainforge.errors import DataError
from trainforge.tasks.llm import _data
from trainforge.tasks.llm._base import LLM_SPEC
from trainforge.tasks.llm._params import LLMParams, autotrain_shape
from trainforge.tasks.llm._tokenizer import require_template_for, set_up_tokenizer
from trainforge.tasks.llm._trainers import LLMPrepared, encoded_prepared, sft_trainer
from trainforge.tasks.spec import Analysis, Column, RunContext


class GenericParams(LLMParams):
    """Parameters of ``llm_generic``."""


COLUMNS = (Column("text", "plain text, or a conversation (list of turns / JSON) rendered with the chat template"),)


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check texts, encode them and cut the token stream into block_size chunks (``facts["encoded"]``)."""
    config = ctx.config
    data_format = _data.detect_sft_format(splits.train, splits.train_origin)
    require_template_for(config, data_format)
    notes = [f"data format: {data_format} (concatenated, cut into {config.params.block_size}-token blocks)"]
    notes += set_up_tokenizer(ctx, data_format)
    tokenizer = ctx.processor
    encoded_splits = {}
    for name, frame, origin in splits.present():
        frame = _data.normalize_sft(frame, data_format, origin)
        stream = []
        for row in _data.as_records(frame):
            ids, _ = _data.encode_sft_row(row, data_format, tokenizer, config.params, completion_only=False)
            stream += ids
        size = config.params.block_size
        blocks = [stream[i : i + size] for i in range(0, len(stream) - size + 1, size)]
        if not blocks:
            raise DataError(f"{origin}: {len(stream)} tokens in all, fewer than one block; lower params.block_size")
        notes.append(
            f"{name}: {len(stream)} tokens -> {len(blocks)} block(s); {len(stream) % size} trailing token(s) dropped"
        )
        encoded_splits[name] = pd.DataFrame({"input_ids": blocks})
    return Analysis("causal_lm", facts={"data_format": data_format, "encoded": encoded_splits}, notes=tuple(notes))


def prepare(ctx: RunContext, splits) -> LLMPrepared:
    """Blocks as a dataset; labels are the inputs (every token trained)."""
    from datasets import Dataset

    def make(frame):
        return Dataset.from_dict({"input_ids": list(frame["input_ids"]), "labels": list(frame["input_ids"])})

    return encoded_prepared(ctx, make)


SPEC = dataclasses.replace(
    LLM_SPEC,
    name="llm_generic",
    summary="Continue pre-training a causal LM on raw text (concatenated, cut into block_size chunks), full or LoRA.",
    params=GenericParams,
    columns=COLUMNS,
    analyze=analyze,
    prepare=prepare,
    make_trainer=sft_trainer,  # over ready-made blocks: no packing, every token trained
    example={
        "model": {"name": "HuggingFaceTB/SmolLM2-135M"},
        "data": {"source": "data/corpus.jsonl", "columns": {"text": "text"}},
        "params": {"block_size": 512},
    },
    training_defaults={"learning_rate": 1e-4, "num_train_epochs": 1.0},
    autotrain=autotrain_shape(
        "default", ("llm", "llm-generic", "llm_generic", "llm-default"), {"text_column": "text"}
    ),
)
