"""Image classification (single- and multi-label) and image regression on any ``AutoModelForImageClassification``.

Example (``examples/image_classification/shapes_resnet.yaml``; ``python examples/make_image_data.py`` writes its
images and a small ResNet initialised from its config)::

    task: image_classification
    model: {name: examples/models/resnet-small}
    data: {source: examples/image_classification/data, eval_split: validation}
    training: {num_train_epochs: 20, learning_rate: 2.0e-3, per_device_train_batch_size: 32}
    params: {augment: true, crop_scale: 0.7}

Run it with ``trainforge train examples/image_classification/shapes_resnet.yaml``.

Data reaches the task as frames of image paths (``data/images.py``: class folders, ZIPs, CSV/JSONL of paths,
``metadata.jsonl``, ``datasets`` folders); every image is opened and checked before any model loads. Images are
decoded batch by batch (``data/image_transforms.py``): augmented for training (albumentations), resized and
normalised by the model's image processor for evaluation, test and predict. The run folder holds the model and its
image processor, so ``pipeline("image-classification", model=run_dir)`` loads it without trainforge.
Metrics, decision thresholds and the best-checkpoint rule are text classification's (``tasks/text_classification``).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from trainforge.data.images import check_images, class_counts
from trainforge.data.labels import (
    Problems,
    finite_numbers,
    is_list_like,
    label_set,
    normalise_single,
    of_the_data,
    ordered_names,
    parse_labels,
    read_label_names,
    require_no_missing,
)
from trainforge.errors import ConfigError, DataError, RunDirError
from trainforge.tasks import text_classification as text
from trainforge.tasks.spec import (
    Analysis,
    AutoTrainShape,
    Column,
    Prepared,
    RunContext,
    TaskParams,
    TaskSpec,
    TrainerInputs,
)

# ---------------------------------------------------------------------------------------------------- params


class ImageParams(TaskParams):
    """What image classification and image regression share: the training augmentation."""

    augment: bool = Field(
        True,
        description=(
            "Augment training images (random resized crop, horizontal flip, colour jitter); evaluation, test and "
            "predict always use the image processor's resize and normalisation only."
        ),
        json_schema_extra={"tier": "basic"},
    )
    crop_scale: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Smallest random crop, as a fraction of the image's area (1: no cropping).",
        json_schema_extra={"tier": "advanced"},
    )


class ImageClassificationParams(text.MultiLabelParams, ImageParams):  # fields: ImageParams', then multi-label
    """Parameters of ``image_classification`` (the multi-label ones are text classification's)."""

    min_images_per_class: int = Field(
        5, ge=1, description="Fewest training images a class may have.", json_schema_extra={"tier": "advanced"}
    )


class ImageRegressionParams(ImageParams):
    """Parameters of ``image_regression``."""

    crop_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        description=(
            "Smallest random crop, as a fraction of the image's area; 1 (default): no cropping, as targets such as "
            "counts change when part of the image is cut away."
        ),
        json_schema_extra={"tier": "advanced"},
    )
    target_names: list[str] | None = Field(
        None,
        description="Names of the targets when each row holds a list of numbers (default: <column>_0, <column>_1...).",
        json_schema_extra={"tier": "advanced"},
    )


IMAGE = Column(
    "image",
    "the image: a file path (relative to the table that lists it) or an image of a class folder",
    kind="image",
)
CLASSIFICATION_COLUMNS = (
    IMAGE,
    Column(
        "label",
        "the class: a name (the class folder's), or a list of names for multi-label",
        role="target",
        kind="label",
    ),
)
REGRESSION_COLUMNS = (
    IMAGE,
    Column("target", "the number to predict, or a list of numbers (several targets)", role="target", kind="number"),
)

# ---------------------------------------------------------------------------------------------------- analyze


def analyze_classification(ctx: RunContext, splits) -> Analysis:
    """Check every image and label of every split and derive the classes (before any model loads).

    Raises:
        DataError: Unusable images and empty labels (all of them, in one message); a single class; a class with
            fewer than ``params.min_images_per_class`` training images; evaluation/test labels never seen in
            training; a named evaluation/test split missing a class (a hold-out missing one gets a note).
    """
    config, params = ctx.config, ctx.config.params
    problems, notes = Problems(), []
    column = config.data.columns.get("label", "label")
    for _, frame, origin in splits.present():
        notes += _check_images(frame, origin, config, problems)
        problems.check(require_no_missing, frame, "label", origin, column)
    problems.raise_if_any()
    multi = params.multi_label
    if multi is None:
        multi = bool(params.label_delimiter) or bool(splits.train["label"].map(is_list_like).any())
    for _, frame, origin in splits.present():
        try:
            if multi:
                frame["label"] = [
                    parse_labels(v, params.label_delimiter, origin, i) for i, v in frame["label"].items()
                ]
            else:
                frame["label"] = normalise_single(frame["label"], origin)
        except DataError as exc:
            problems.add(str(exc))
    problems.raise_if_any()
    frames = [frame for _, frame, _ in splits.present()]
    written = [name for frame in frames for name in (label_set(frame["label"], multi) if multi else frame["label"])]
    reading = read_label_names(written, f"the label column ({column!r})")
    for frame in frames:
        mapped = [sorted({reading.classes[n] for n in v}) for v in frame["label"]] if multi else None
        frame["label"] = mapped if multi else frame["label"].map(reading.classes)
    seen = label_set(splits.train["label"], multi)
    names = ordered_names(reading, seen, None)
    if len(names) < 2:
        raise DataError(
            f"{splits.train_origin}: every image has the class {names[0]!r}; classification needs at least two "
            "classes (one sub-folder per class, or a label column with two or more names)"
        )
    counts = class_counts(splits.train["label"])
    few = {name: counts[name] for name in names if counts[name] < params.min_images_per_class}
    if few:
        listing = ", ".join(f"{name!r}: {count}" for name, count in few.items())
        raise DataError(
            f"{splits.train_origin}: too few training images for class(es) {listing} (at least "
            f"{params.min_images_per_class} each, params.min_images_per_class): add images or remove those classes"
        )
    notes += _split_classes(splits, seen, multi)
    problem = "multi_label_classification" if multi else "single_label_classification"
    return Analysis(problem, tuple(names), notes=tuple(list(reading.notes) + notes))


def _check_images(frame: pd.DataFrame, origin: str, config, problems: Problems) -> list[str]:
    """Every image of one split (``images.check_images``); problems collected, conversion notes returned."""
    try:
        return check_images(frame, "image", origin, config.data.columns.get("image", "image")).notes
    except DataError as exc:
        problems.add(str(exc))
        return []


def _split_classes(splits, seen: set[str], multi: bool) -> list[str]:
    """Evaluation/test splits against the training classes: unseen labels fail, missing classes fail or note."""
    notes = []
    for role, frame, origin in splits.present()[1:]:
        present = label_set(frame["label"], multi)
        unseen = sorted(present - seen)
        if unseen:
            offending = [
                f"{frame['image'][i]}" for i, v in frame["label"].items() if set(v if multi else [v]) & set(unseen)
            ]
            raise DataError(
                f"{origin}: classes {unseen} never occur in training ({splits.train_origin}), so the model cannot "
                f"predict them; e.g. {', '.join(offending[:3])}. Add training images of them or remove those images."
            )
        missing = sorted(seen - present)
        if not missing:
            continue
        named = (role == "eval" and splits.eval_origin and " of " not in splits.eval_origin) or role == "test"
        if named:
            raise DataError(
                f"{origin}: no images of class(es) {missing}, which training has: their scores could not be measured. "
                f"Add images of them to the {role} split (e.g. {origin}/{missing[0]}/), or hold out training images "
                "instead (drop data.eval_split, set data.eval_fraction)."
            )
        notes.append(f"{origin}: no images of class(es) {missing}: their evaluation scores are not measured")
    return notes


def analyze_regression(ctx: RunContext, splits) -> Analysis:
    """Check every image and that every target is a finite number (or a list of as many as the others).

    Raises:
        DataError: Unusable images, empty or non-numeric targets, lists of different lengths (all in one message),
            or ``params.target_names`` naming another number of targets.
    """
    config, params = ctx.config, ctx.config.params
    problems, notes = Problems(), []
    column = config.data.columns.get("target", "target")
    widths = set()
    for _, frame, origin in splits.present():
        notes += _check_images(frame, origin, config, problems)
        if not problems.check(require_no_missing, frame, "target", origin, column):
            continue
        try:
            frame["target"], width = _targets(frame["target"], origin, column)
            widths.add(width)
        except DataError as exc:
            problems.add(str(exc))
    if len(widths) > 1:
        problems.add(f"the splits hold different numbers of targets per image: {sorted(widths)}")
    problems.raise_if_any()
    (width,) = widths
    if params.target_names is not None and len(params.target_names) != max(width, 1):
        raise DataError(
            f"params.target_names names {len(params.target_names)} targets, but the data holds {max(width, 1)}"
        )
    names = params.target_names or ([column] if width == 0 else [f"{column}_{i}" for i in range(width)])
    return Analysis("regression", tuple(names), facts={"list_targets": width > 0}, notes=tuple(notes))


def _targets(values: pd.Series, origin: str, column: str) -> tuple[list, int]:
    """Floats (width 0) or equal-length lists of floats (width k); raises naming the rows that are neither."""
    lists = values.map(lambda v: is_list_like(v) or (isinstance(v, str) and v.strip().startswith("[")))
    if not lists.any():
        return finite_numbers(values, "the target column", origin, of_the_data("target", column)).tolist(), 0
    parsed = [_number_list(v, origin, i) for i, v in values.items()]
    lengths = {len(v) for v in parsed}
    if len(lengths) > 1 or not lists.all():
        raise DataError(
            f"{origin}: the target column mixes single numbers and lists, or lists of different lengths "
            f"({sorted(lengths)}){of_the_data('target', column)}: give every image the same number of targets"
        )
    flat = pd.Series([x for row in parsed for x in row])
    numbers = finite_numbers(flat, "the target lists", origin, of_the_data("target", column))
    width = lengths.pop()
    return [numbers.iloc[i * width : (i + 1) * width].tolist() for i in range(len(parsed))], width


def _number_list(value, origin: str, row) -> list:
    """A list cell as a list (JSON or Python list text is parsed); a single value becomes a one-item list."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise DataError(f"{origin}: row {row + 1}: cannot read the target list {value!r}") from None
    return list(value) if is_list_like(value) else [value]


# ---------------------------------------------------------------------------------------------------- prepare


def load_image_processor(ctx: RunContext):
    """The base model's image processor (PIL backend unless torchvision is installed).

    Raises:
        ConfigError: The model folder holds no image processor (``preprocessor_config.json``).
    """
    config = ctx.config
    try:
        return image_processor(config.model.name, config.model.revision, config.model.trust_remote_code)
    except OSError as exc:
        raise ConfigError(
            [
                (
                    "model.name",
                    f"{config.model.name} has no image processor (preprocessor_config.json): save one beside the "
                    f"model (e.g. ViTImageProcessor(...).save_pretrained(folder)); {str(exc)[:200]}",
                )
            ]
        ) from None


def image_processor(name: str | Path, revision: str | None = None, trust_remote_code: bool = False):
    """``AutoImageProcessor`` for ``name``: its torchvision backend where installed, else its PIL one (no warning)."""
    from transformers import AutoImageProcessor

    backend = None if importlib.util.find_spec("torchvision") else "pil"
    return AutoImageProcessor.from_pretrained(
        str(name), revision=revision, trust_remote_code=trust_remote_code, backend=backend
    )


def prepare(ctx: RunContext, splits) -> Prepared:
    """Datasets of image paths and encoded labels; pixels are produced per batch (augmented for training only)."""
    from datasets import Dataset

    from trainforge.data.image_transforms import augmentation, batch_transform, collate, processor_size

    config, labels, processor = ctx.config, ctx.labels, ctx.processor
    params = config.params
    augment = None
    if params.augment:
        augment = augmentation(processor_size(processor), params.crop_scale, config.training.seed)

    def encode(frame: pd.DataFrame | None, augmented) -> Dataset | None:
        if frame is None:
            return None
        dataset = Dataset.from_dict({"image": list(frame["image"]), "labels": text.encode_labels(frame, labels)})
        return dataset.with_transform(batch_transform(processor, "image", augmented))

    return Prepared(encode(splits.train, augment), encode(splits.eval, None), collate, encode(splits.test, None))


def build_model(ctx: RunContext):
    """An image-classification head (one output per class or target) on the base model."""
    from transformers import AutoModelForImageClassification

    config, labels = ctx.config, ctx.labels
    return AutoModelForImageClassification.from_pretrained(
        config.model.name,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
        num_labels=labels.num_labels,
        id2label=dict(enumerate(labels.names)),
        label2id={name: i for i, name in enumerate(labels.names)},
        problem_type=labels.problem_type,
        ignore_mismatched_sizes=True,
    )


def make_trainer(inputs: TrainerInputs):
    """The default Trainer, restoring checkpoints (best model, ``--resume``) through ``from_pretrained``.

    transformers 5.24's Trainer would restore nothing of a ViT checkpoint (see ``ConvertedCheckpointRestore``).
    """
    from trainforge.training.hf_trainer import ConvertedCheckpointRestore, WeightedLossTrainer

    class CheckpointSafeTrainer(ConvertedCheckpointRestore, WeightedLossTrainer):
        pass

    from transformers import TrainingArguments

    prepared = inputs.prepared
    return CheckpointSafeTrainer(
        model=inputs.model,
        args=TrainingArguments(**inputs.args),
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=inputs.ctx.processor,
        compute_metrics=inputs.compute_metrics,
        callbacks=inputs.callbacks,
    )


# ---------------------------------------------------------------------------------------------------- predict


class ImagePredictor:
    """A finished image classification or regression run, loaded once: image processor, model, thresholds.

    Thread-safe: batches run one call at a time (the model is shared).
    """

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's image processor and model (CPU, eval mode) and, for multi-label, its stored thresholds.

        Raises:
            OSError: The run directory holds no readable model or image processor.
        """
        from transformers import AutoModelForImageClassification

        self.run_dir, self.config = Path(run_dir), config
        self.column = config.data.columns.get("image", "image")
        self.processor = image_processor(self.run_dir)
        self.model = AutoModelForImageClassification.from_pretrained(self.run_dir).eval()
        model_config = self.model.config
        self.names = [model_config.id2label[i] for i in range(model_config.num_labels)]
        multi = model_config.problem_type == "multi_label_classification"
        self.thresholds = text.stored_thresholds(self.run_dir, self.names, config) if multi else None
        self._lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add predictions to ``frame``: ``prediction`` and ``prob_<class>`` columns, or the predicted numbers.

        Args:
            frame: n rows holding the run's image column (``data.columns.image``): file paths (absolute, or
                relative to the working directory), ``data:image/...;base64,...`` URIs or image bytes.

        Returns:
            A copy of ``frame`` with ``prediction`` (a class; multi-label: the classes joined by ``|`` or
            ``params.label_delimiter``) and one ``prob_<class>`` per class; regression: ``prediction`` (one target)
            or ``prediction_<name>`` per target.

        Raises:
            DataError: The image column is missing, or an image cannot be opened (naming it).
            RunDirError: The model outputs NaN/inf (a run whose training diverged).
        """
        import torch

        from trainforge.data.image_transforms import pixel_values

        if self.column not in frame:
            found = ", ".join(map(str, frame.columns))
            raise DataError(f"the input has no column {self.column!r} (the run's image column); found: {found}")
        images = frame[self.column].tolist()
        outputs = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(images), 32):
                pixels = torch.from_numpy(pixel_values(self.processor, images[start : start + 32]))
                outputs.append(self.model(pixel_values=pixels).logits.float().numpy())
        logits = np.concatenate(outputs) if outputs else np.zeros((0, len(self.names)))
        broken = int((~np.isfinite(logits)).any(axis=-1).sum())
        if broken:
            raise RunDirError(
                f"the model in {self.run_dir} outputs NaN/inf for {broken} of {len(logits)} image(s): its weights are "
                "broken (a training run that diverged); retrain it with a lower training.learning_rate"
            )
        if self.model.config.problem_type != "regression":
            return text._predictions_frame(
                frame, logits, self.model.config, self.config, self.run_dir, self.thresholds
            )
        out = frame.copy()
        if len(self.names) == 1:
            out["prediction"] = logits[:, 0]
        for i, name in enumerate(self.names if len(self.names) > 1 else []):
            out[f"prediction_{name}"] = logits[:, i]
        return out


def predict(run_dir: Path, frame: pd.DataFrame, config) -> pd.DataFrame:
    """One prediction: load the run (``ImagePredictor``) and predict ``frame``."""
    return ImagePredictor(run_dir, config).predict(frame)


# ---------------------------------------------------------------------------------------------------- specs

SPEC = TaskSpec(
    name="image_classification",
    summary="Classify images into classes (single- or multi-label) by fine-tuning any image classification model.",
    params=ImageClassificationParams,
    columns=CLASSIFICATION_COLUMNS,
    analyze=analyze_classification,
    load_processor=load_image_processor,
    prepare=prepare,
    build_model=build_model,
    compute_metrics=text.compute_metrics,
    best_metric=text.best_metric,
    predict=predict,
    load_predictor=ImagePredictor,
    finish=text.finish,
    make_trainer=make_trainer,
    pipeline_tag="image-classification",
    processor="image_processor",
    reuse_logged_eval=True,
    stratify_column="label",
    extras=(("PIL", "vision"), ("albumentations", "vision")),
    example={
        "model": {"name": "google/vit-base-patch16-224-in21k"},
        "data": {"source": "data/images", "eval_split": "validation"},
    },
    autotrain=AutoTrainShape(
        aliases=(
            "image_classification",
            "image-classification",
            "image_binary_classification",
            "image-binary-classification",
        ),
        columns={"image_column": "image", "target_column": "label"},
    ),
)

# Same model class, data path and trainer: only the head (one output per target), checks and metrics differ.
REGRESSION_SPEC = dataclasses.replace(
    SPEC,
    name="image_regression",
    summary="Predict one or more numbers from an image (scores, counts) by fine-tuning an image model.",
    params=ImageRegressionParams,
    columns=REGRESSION_COLUMNS,
    analyze=analyze_regression,
    finish=None,
    stratify_column=None,
    example={
        "model": {"name": "google/vit-base-patch16-224-in21k"},
        "data": {"source": "data/images", "columns": {"target": "score"}},
    },
    autotrain=AutoTrainShape(
        aliases=(
            "image_regression",
            "image-regression",
            "image-scoring",
            "image_single_column_regression",
            "image-single-column-regression",
        ),
        columns={"image_column": "image", "target_column": "target"},
    ),
)
