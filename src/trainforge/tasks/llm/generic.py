"""Generic causal-LM training (continued pre-training): texts concatenated and cut into block_size chunks.

Example (``examples/llm_generic/tiny_generic.yaml``)::

    task: llm_generic
    model: {name: path/to/model}
    data: {source: examples/llm_generic/data/corpus.jsonl, columns: {text: text}, eval_fraction: 0.1}
    params: {block_size: 128}

Run it with ``trainforge train examples/llm_generic/tiny_generic.yaml``. Each text ends with EOS before
concatenation; the last partial chunk is dropped (counted). Evaluation reports loss and perplexity.
"""

from __future__ import annotations

import pandas as pd

from trainforge.errors import DataError
from trainforge.tasks.llm import _data, _inference
from trainforge.tasks.llm._shared import (
    AUTOTRAIN_PARAMS,
    LLMParams,
    LLMPrepared,
    added_token_ids,
    autotrain_value,
    best_metric,
    build_causal_lm,
    check_config,
    configure_tokenizer,
    load_tokenizer,
    lora_config,
    model_card,
    no_metrics,
    require_template_for,
    tokenizer_for,
    trainer_class,
    trl_config,
)
from trainforge.tasks.spec import AutoTrainShape, Column, LabelInfo, TaskSpec


class GenericParams(LLMParams):
    """Parameters of ``llm_generic``."""


COLUMNS = (Column("text", "plain text, or a conversation (list of turns / JSON) rendered with the chat template"),)


def analyze(splits, config) -> LabelInfo:
    """Check texts, encode them and cut the token stream into block_size chunks (kept on the splits)."""
    data_format = _data.detect_sft_format(splits.train, splits.train_origin)
    require_template_for(config, data_format)
    tokenizer, notes = tokenizer_for(config, data_format)
    notes = [f"data format: {data_format} (concatenated, cut into {config.params.block_size}-token blocks)"] + notes
    for name in ("train", "eval"):
        frame, origin = getattr(splits, name), getattr(splits, f"{name}_origin")
        if frame is None:
            continue
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
        setattr(splits, name, pd.DataFrame({"input_ids": blocks}))
    return LabelInfo("causal_lm", (data_format,), notes=tuple(notes))


def prepare(splits, config, labels: LabelInfo, tokenizer) -> LLMPrepared:
    """Blocks as a dataset; labels are the inputs (every token trained)."""
    from datasets import Dataset

    configure_tokenizer(tokenizer, config, labels.names[0])

    def make(frame):
        return Dataset.from_dict({"input_ids": list(frame["input_ids"]), "labels": list(frame["input_ids"])})

    eval_set = make(splits.eval) if splits.eval is not None else None
    return LLMPrepared(
        make(splits.train), eval_set, None, config=config, new_token_ids=added_token_ids(tokenizer, config)
    )


def make_trainer(model, args, prepared: LLMPrepared, processor, compute_metrics, callbacks):
    """TRL ``SFTTrainer`` over ready-made blocks (no further preparation)."""
    from trl import SFTConfig, SFTTrainer

    config = prepared.config
    sft_args = trl_config(
        SFTConfig, args, max_length=config.params.block_size, dataset_kwargs={"skip_prepare_dataset": True}
    )
    trainer = trainer_class(SFTTrainer)(
        model=model,
        args=sft_args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=processor,
        callbacks=callbacks,
        peft_config=lora_config(config, "CAUSAL_LM", prepared.new_token_ids),
    )
    trainer.run_config, trainer.report_perplexity = config, True
    return trainer


SPEC = TaskSpec(
    name="llm_generic",
    summary="Continue pre-training a causal LM on raw text (concatenated, cut into block_size chunks), full or LoRA.",
    params=GenericParams,
    columns=COLUMNS,
    analyze=analyze,
    load_processor=load_tokenizer,
    prepare=prepare,
    build_model=build_causal_lm,
    compute_metrics=no_metrics,
    best_metric=best_metric,
    predict=_inference.predict_generate,
    pipeline_tag="text-generation",
    model_card=model_card,
    example={
        "model": {"name": "HuggingFaceTB/SmolLM2-135M"},
        "data": {"source": "data/corpus.jsonl", "columns": {"text": "text"}},
        "params": {"block_size": 512},
    },
    training_defaults={"learning_rate": 1e-4, "num_train_epochs": 1.0},
    check_config=check_config,
    autotrain=AutoTrainShape(
        aliases=("llm", "llm-generic", "llm_generic", "llm-default"),
        columns={"text_column": "text"},
        params=AUTOTRAIN_PARAMS,
        values=autotrain_value("default"),
    ),
    make_trainer=make_trainer,
    extras=(("trl", "llm"), ("peft", "llm")),
)
