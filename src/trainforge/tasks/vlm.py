"""Image captioning and visual question answering with any image-text-to-text model (LLaVA, Idefics3/SmolVLM, ...).

Example (``examples/vlm/llava_captions.yaml``)::

    task: vlm
    model: {name: runs/tiny-llava}
    data: {source: examples/vlm/data, eval_split: validation, columns: {answer: caption}}
    training: {num_train_epochs: 4, learning_rate: 3.0e-3, per_device_train_batch_size: 8}

Run it with ``trainforge train examples/vlm/llava_captions.yaml``, then
``trainforge chat runs/vlm-captions --image x.png --prompt "Describe the image."``.

Rows hold an image and either an answer (a caption: the prompt is ``params.prompt``; or the answer to a ``prompt``
column's question) or a chat ``messages`` column whose last assistant turn is learnt. Every image is checked before
any model loads; the model's processor (``AutoProcessor``: its chat template, image processor and tokenizer) renders
the rows, and TRL's ``SFTTrainer`` trains on them with its vision collator (``data/vision_text.py``): the loss covers
the answer's tokens only. The vision tower is frozen unless ``params.train_vision_tower``; LoRA (``peft:``) adapts
the rest, and the run folder holds the merged model, which ``AutoModelForImageTextToText.from_pretrained`` loads.
Evaluation reports the loss and, on the first ``params.eval_generate_rows`` rows, ROUGE/BLEU/chrF of the generated
answers (``metrics/generation.py``).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from trainforge.config.sections import ADVANCED, BASIC
from trainforge.data import vision_text as vt
from trainforge.data.images import check_images
from trainforge.data.labels import Problems
from trainforge.errors import ConfigError, DataError
from trainforge.tasks.spec import (
    AUTOTRAIN_DROP,
    Analysis,
    AutoTrainShape,
    Column,
    Metric,
    Prepared,
    RunContext,
    TaskParams,
    TaskSpec,
    TrainerInputs,
)


class VLMParams(TaskParams):
    """Parameters of ``vlm``."""

    prompt: str = Field(
        "Describe the image.",
        min_length=1,
        description="The prompt of rows without a prompt column (captioning); predict uses it too.",
        json_schema_extra=BASIC,
    )
    train_vision_tower: bool = Field(
        False,
        description="Train the vision tower too (frozen by default: only the projector and language model learn).",
        json_schema_extra=ADVANCED,
    )
    max_length: int | None = Field(
        None,
        gt=0,
        description="Cut prompt + answer to this many tokens, image tokens included (default: no cut).",
        json_schema_extra=ADVANCED,
    )
    eval_generate_rows: int = Field(
        32,
        ge=0,
        description="Evaluation: generate answers for this many rows and report ROUGE/BLEU/chrF (0: loss only).",
        json_schema_extra=ADVANCED,
    )
    max_new_tokens: int = Field(
        64,
        gt=0,
        description="Most tokens generated per answer (evaluation, predict, chat).",
        json_schema_extra=ADVANCED,
    )
    temperature: float = Field(
        0.0, ge=0, description="predict/chat: sampling temperature (0 = greedy).", json_schema_extra=ADVANCED
    )
    top_p: float = Field(
        1.0, gt=0, le=1, description="predict/chat: nucleus sampling mass.", json_schema_extra=ADVANCED
    )


IMAGE = Column("image", "the image: a file path (relative to the table that lists it)", kind="image")
PROMPT = Column("prompt", "the question or instruction (default: params.prompt)", required=False)
COLUMNS = (
    IMAGE,
    PROMPT,
    Column("answer", "the answer or caption the model learns to write", required=False, role="target"),
    Column("messages", "a chat: {role, content} turns; the last assistant turn is learnt", False, kind="messages"),
)
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p")
COLUMN_ORDER = ("messages", "prompt", "answer")  # the text columns every split must share

# ---------------------------------------------------------------------------------------------------- analyze


def analyze(ctx: RunContext, splits) -> Analysis:
    """Check the model kind, every image and row of every split, and render one training row as the model sees it.

    Raises:
        ConfigError: The model is not an image-text-to-text model, or its processor has no chat template.
        DataError: No answer/messages column; unusable images, empty or non-text answers/prompts, malformed chat
            rows, texts holding the model's image token (all in one message).
    """
    config = ctx.config
    check_model_kind(config)
    mapping = config.data.columns
    data_format = "messages" if "messages" in splits.train else "prompt_answer"
    if data_format == "prompt_answer" and "answer" not in splits.train:
        raise DataError(
            f"{splits.train_origin}: no answer column ({mapping.get('answer', 'answer')!r}) and no messages column "
            f"({mapping.get('messages', 'messages')!r}): name the column of captions or answers, e.g. "
            "data.columns: {answer: caption}, or a chat column, data.columns: {messages: conversations}"
        )
    problems, notes = Problems(), [f"data format: {data_format}"]
    if data_format == "messages" and {"answer", "prompt"} & set(splits.train.columns):
        notes.append("the messages column is read; the prompt/answer columns are not")
    token = getattr(ctx.processor, "image_token", None) or ""
    shape = [c for c in COLUMN_ORDER if c in splits.train]
    encoded = {}
    for name, frame, origin in splits.present():
        try:
            notes += check_images(frame, "image", origin, mapping.get("image", "image")).notes
        except DataError as exc:
            problems.add(str(exc))
        own = [c for c in COLUMN_ORDER if c in frame]
        if own != shape:
            problems.add(
                f"{origin}: its text columns ({', '.join(own) or 'none'}) differ from the training rows' "
                f"({', '.join(shape)}, {splits.train_origin}): give every split the same columns"
            )
            continue
        if data_format == "messages":
            pairs, found = vt.message_conversations(frame, origin, mapping.get("messages", "messages"))
        else:
            found = vt.pair_rows(frame, config.params.prompt, origin, mapping)
            pairs = [] if found else vt.pair_conversations(frame, config.params.prompt)
        token_problem = None if found else vt.literal_image_tokens(pairs, frame.index, token, origin)
        for problem in [*found, *([token_problem] if token_problem else [])]:
            problems.add(problem)
        if found:
            continue
        encoded[name] = pd.DataFrame(
            {
                "image": list(frame["image"]),
                "prompt": [vt.as_json(p) for p, _ in pairs],
                "completion": [vt.as_json(c) for _, c in pairs],
            }
        )
    problems.raise_if_any()
    collator = vt.VisionTextCollator(ctx.processor, config.params.max_length)
    first = encoded["train"].iloc[:1].to_dict("records")
    notes.append("example (trained tokens in ⟦ ⟧): " + vt.show_example(ctx.processor, collator(first)))
    return Analysis("image_text_to_text", facts={"data_format": data_format, "encoded": encoded}, notes=tuple(notes))


def check_model_kind(config) -> None:
    """The base model is an image-text-to-text model (read from its ``config.json``; no weights load).

    Raises:
        ConfigError: Its config names an architecture ``AutoModelForImageTextToText`` does not cover.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    try:
        model_config = AutoConfig.from_pretrained(
            config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
        )
    except (OSError, ValueError) as exc:  # a missing or unreadable config.json, an unknown model_type
        raise ConfigError([("model.name", f"cannot read the model's config: {exc}")]) from None
    remote = bool(getattr(model_config, "auto_map", {}).get("AutoModelForImageTextToText"))
    if model_config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES and not remote:
        raise ConfigError(
            [
                (
                    "model.name",
                    f"{config.model.name} is a {model_config.model_type} model, not an image-text-to-text model: vlm "
                    "needs one that AutoModelForImageTextToText loads (LLaVA, Idefics3/SmolVLM, Qwen2-VL, "
                    "PaliGemma, ...); text-only models train with llm_sft",
                )
            ]
        )


# ---------------------------------------------------------------------------------------------------- prepare


def load_processor(ctx: RunContext):
    """The model's ``AutoProcessor`` (chat template, image processor, tokenizer), padding with EOS if it has no pad.

    Raises:
        ConfigError: The folder holds no multimodal processor, or the processor has no chat template.
    """
    from transformers import AutoProcessor, ProcessorMixin

    config = ctx.config
    try:
        processor = AutoProcessor.from_pretrained(
            config.model.name, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise ConfigError([("model.name", f"cannot load the model's processor: {str(exc)[:300]}")]) from None
    if not isinstance(processor, ProcessorMixin) or getattr(processor, "image_processor", None) is None:
        raise ConfigError(
            [("model.name", f"{config.model.name} has no image+text processor (processor_config.json beside it)")]
        )
    if not getattr(processor, "chat_template", None):
        raise ConfigError(
            [
                (
                    "model.name",
                    f"{config.model.name}'s processor has no chat template, which renders the prompts and answers: "
                    "use an instruction-tuned VLM, or save a chat_template.jinja in the model folder",
                )
            ]
        )
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        ctx.notes.append(f"the tokenizer has no pad token: batches are padded with EOS ({tokenizer.eos_token!r})")
    return processor


def prepare(ctx: RunContext, splits) -> Prepared:
    """Datasets of (image path, prompt JSON, completion JSON) per split; the collator opens and encodes each batch."""
    from datasets import Dataset

    encoded = ctx.labels.facts["encoded"]

    def dataset(name: str):
        return Dataset.from_pandas(encoded[name], preserve_index=False) if name in encoded else None

    collator = vt.VisionTextCollator(ctx.processor, ctx.config.params.max_length)
    return Prepared(dataset("train"), dataset("eval"), collator, dataset("test"))


def build_model(ctx: RunContext):
    """The base ``AutoModelForImageTextToText``, its vision tower frozen unless ``params.train_vision_tower``."""
    from transformers import AutoModelForImageTextToText

    from trainforge.tasks.llm._models import torch_dtype

    config = ctx.config
    model = AutoModelForImageTextToText.from_pretrained(
        config.model.name,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
        dtype=torch_dtype(config),
    )
    tokenizer = ctx.processor.tokenizer
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if not config.params.train_vision_tower:
        tower = vision_tower(model)
        for parameter in tower.parameters():
            parameter.requires_grad = False  # LoRA then leaves it alone too (models/peft.frozen_modules)
    return model


def vision_tower(model):
    """The model's image encoder (``get_encoder(modality="image")``: vision_tower, visual, vision_model, ...).

    Raises:
        ConfigError: The model has none transformers can find (so it cannot be frozen).
    """
    tower = model.get_encoder(modality="image")
    if tower is model or tower is None:
        raise ConfigError(
            [
                (
                    "params.train_vision_tower",
                    f"{type(model).__name__} has no vision tower transformers can find; set "
                    "params.train_vision_tower: true to train the whole model",
                )
            ]
        )
    return tower


# ---------------------------------------------------------------------------------------------------- trainer


# Scores of the generated answers a run may select checkpoints on (higher is better); gen_len is not a score.
GENERATED_SCORES = ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf")


def best_metric(ctx: RunContext) -> Metric:
    """Checkpoints are chosen (and training stops early) on the evaluation loss, or the score the user named."""
    name = ctx.config.training.metric_for_best_model or "loss"
    return Metric(name, greater_is_better=name in (*GENERATED_SCORES, "mean_token_accuracy"))


def check_config(config) -> list[tuple[str, str]]:
    """``training.metric_for_best_model`` must be a score this run reports (generated ones need generation)."""
    name = config.training.metric_for_best_model
    known = ("loss", "mean_token_accuracy", *GENERATED_SCORES)
    if name is None or name in known[:2]:
        return []
    key = "training.metric_for_best_model"
    if name not in known:
        return [(key, f"{name!r} is not a vlm score; use one of {', '.join(known)}")]
    if not config.params.eval_generate_rows:
        return [(key, f"{name} scores generated answers: set params.eval_generate_rows above 0, or use loss")]
    return []


def no_metrics(ctx: RunContext):
    """The trainer adds its own: loss and token accuracy, and scores of generated answers (``VLMTrainer``)."""
    return None


def make_trainer(inputs: TrainerInputs):
    """TRL's ``SFTTrainer`` on the prepared rows with the vision collator, scoring generated answers in evaluation."""
    from trl import SFTConfig, SFTTrainer

    from trainforge.metrics.generation import generation_metrics
    from trainforge.tasks.llm._trainers import trl_config
    from trainforge.training.hf_trainer import ConvertedCheckpointRestore

    ctx, prepared = inputs.ctx, inputs.prepared
    params = ctx.config.params

    class VLMTrainer(ConvertedCheckpointRestore, SFTTrainer):
        """``SFTTrainer`` whose evaluation also generates answers for a sample and scores them."""

        _scored: Any = None
        _prefix = "eval"

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            self._scored = eval_dataset if eval_dataset is not None else self.eval_dataset
            self._prefix = metric_key_prefix
            try:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            finally:
                self._prefix = "eval"

        def log(self, logs, start_time=None):
            # TRL names its evaluation metrics (entropy, token accuracy) eval_* whatever the split: a test split's
            # would read as a second evaluation of the eval split. They go under the split's own prefix.
            if self._prefix != "eval" and not self.model.training:
                for key, values in self._metrics["eval"].items():
                    logs[f"{self._prefix}_{key}"] = sum(values) / len(values)
                self._metrics["eval"].clear()
            super().log(logs, start_time)

        def evaluation_loop(
            self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
        ):
            output = super().evaluation_loop(
                dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
            )
            rows = self._scored
            if rows is not None and params.eval_generate_rows:
                sample = rows.select(range(min(params.eval_generate_rows, len(rows))))
                answers, lengths = _generate_for(self.model, self.processing_class, sample, params)
                references = [vt.text_of(json.loads(c)[0]["content"]) for c in sample["completion"]]
                scores = generation_metrics(answers, references, lengths)
                output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in scores.items()})
            return output

    args = trl_config(
        SFTConfig,
        inputs.args,
        max_length=params.max_length,
        completion_only_loss=True,
        dataset_kwargs={"skip_prepare_dataset": True},
    )
    return VLMTrainer(
        model=inputs.model,
        args=args,
        data_collator=prepared.collator,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        processing_class=ctx.processor,
        callbacks=inputs.callbacks,
    )


def _generate_for(model, processor, rows, params) -> tuple[list[str], list[int]]:
    """Greedy answers (and generated lengths) for prepared ``rows`` (image path, prompt JSON)."""
    from trainforge.data.images import open_rgb

    was_training = model.training
    model.eval()
    prompts = [json.loads(p) for p in rows["prompt"]]
    images = [[open_rgb(path)] for path in rows["image"]]
    try:
        return vt.generate_answers(model, processor, prompts, images, params.max_new_tokens)
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------------------------------- predict


class VLMPredictor:
    """A finished vlm run, loaded once with plain transformers (``AutoProcessor`` + ``AutoModelForImageTextToText``).

    Thread-safe: ``generate`` calls on the shared model run one at a time.
    """

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's processor and model (CUDA when available, eval mode)."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.run_dir, self.config = Path(run_dir), config
        self.processor = AutoProcessor.from_pretrained(str(self.run_dir))
        model = AutoModelForImageTextToText.from_pretrained(str(self.run_dir))
        self.model = (model.to("cuda") if torch.cuda.is_available() else model).eval()
        self._lock = threading.Lock()

    def generation(self, **overrides: Any) -> dict[str, Any]:
        """``max_new_tokens``, ``temperature`` and ``top_p``: the run's params, with the non-None ``overrides``."""
        unknown = set(overrides) - set(GENERATION_KEYS)
        if unknown:
            raise DataError(f"unknown generation settings {sorted(unknown)}; known: {', '.join(GENERATION_KEYS)}")
        params = self.config.params
        return {k: overrides[k] if overrides.get(k) is not None else getattr(params, k) for k in GENERATION_KEYS}

    def _generate(self, prompts: list[list[dict]], images: list[list[Any]], **overrides: Any) -> list[str]:
        with self._lock:
            settings = self.generation(**overrides)
            answers, _ = vt.generate_answers(self.model, self.processor, prompts, images, **settings)
        return answers

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add a ``generation`` column: the answer to each row's image and prompt (or ``params.prompt``).

        Args:
            frame: n rows with the run's image column (paths, ``data:image/...;base64`` URIs or bytes) and, optionally,
                its prompt column.

        Returns:
            A copy of ``frame`` with ``generation`` (str).

        Raises:
            DataError: The image column is missing, an image cannot be opened, or a prompt cell is empty.
        """
        from trainforge.data.images import open_rgb

        columns = self.config.data.columns
        image, prompt = columns.get("image", "image"), columns.get("prompt", "prompt")
        if image not in frame:
            found = ", ".join(map(str, frame.columns))
            raise DataError(f"the input has no column {image!r} (the run's image column); found: {found}")
        texts = frame[prompt] if prompt in frame else pd.Series(self.config.params.prompt, index=frame.index)
        empty = [i + 1 for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
        if empty:
            raise DataError(f"input rows {empty[:5]}: the prompt column {prompt!r} is empty; give each row a prompt")
        prompts = [[{"role": "user", "content": text.strip()}] for text in texts]
        out = frame.copy()
        out["generation"] = self._generate(prompts, [[open_rgb(value)] for value in frame[image]])
        return out

    def chat(self, messages: list[dict[str, Any]], **generation: Any) -> str:
        """The reply to a conversation; image parts (``{"type": "image", "path": ...}``) carry its images.

        Raises:
            DataError: No user message, or an image part that cannot be opened.
        """
        if not any(turn.get("role") == "user" for turn in messages):
            raise DataError("the conversation has no user message to answer")
        turns, images = vt.image_parts_to_images(messages)
        return self._generate([turns], [images], **generation)[0]


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: load the run (``VLMPredictor``) and answer ``frame``."""
    return VLMPredictor(run_dir, config).predict(frame)


def model_card(run_dir: Path, config) -> str:
    """The "Use it" section: plain transformers loading and generation, and trainforge's chat."""
    adapter = "\nThe LoRA adapter it was merged from is in `adapter/`.\n" if config.peft.enabled else ""
    return f"""## Use it

```python
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("{run_dir}")
processor = AutoProcessor.from_pretrained("{run_dir}")
messages = [{{"role": "user", "content": [{{"type": "image"}}, {{"type": "text", "text": "{config.params.prompt}"}}]}}]
text = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(images=[Image.open("x.jpg").convert("RGB")], text=[text], return_tensors="pt")
answer = model.generate(**inputs, max_new_tokens={config.params.max_new_tokens})[0, inputs["input_ids"].shape[1]:]
print(processor.decode(answer, skip_special_tokens=True))
```
{adapter}
Or: `trainforge chat {run_dir} --image x.jpg --prompt "{config.params.prompt}"`.
"""


# ---------------------------------------------------------------------------------------------------- spec


def _reference_value(name: str, value: Any) -> Any:
    """The reference's ``params.trainer`` (captioning/vqa) is read from the data's columns here."""
    print(f"note: params.{name} {value!r}: vlm tells captions from VQA by the data's columns", file=sys.stderr)
    return AUTOTRAIN_DROP


SPEC = TaskSpec(
    name="vlm",
    summary="Image captioning and visual question answering with any image-text-to-text model (LLaVA, SmolVLM...).",
    params=VLMParams,
    columns=COLUMNS,
    analyze=analyze,
    load_processor=load_processor,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=no_metrics,
    best_metric=best_metric,
    check_config=check_config,
    predict=predict,
    load_predictor=VLMPredictor,
    make_trainer=make_trainer,
    pipeline_tag="image-text-to-text",
    processor="processor",
    reuse_logged_eval=True,  # the logged evaluation holds the loss, TRL's metrics and the generated answers' scores
    model_card=model_card,
    predict_inputs=(IMAGE, PROMPT),
    lora="CAUSAL_LM",  # the driver wraps the model (frozen vision tower left out) and saves the merged model
    extras=(("PIL", "vision"), ("trl", "llm"), ("peft", "llm")),
    example={
        "model": {"name": "HuggingFaceTB/SmolVLM-256M-Instruct"},
        "data": {"source": "data/images", "eval_split": "validation", "columns": {"answer": "caption"}},
        "peft": {"enabled": True},
    },
    autotrain=AutoTrainShape(
        aliases=("vlm:captioning", "vlm:vqa"),
        columns={"image_column": "image", "text_column": "answer", "prompt_text_column": "prompt"},
        params={"trainer": "trainer"},
        values=_reference_value,
    ),
)
