"""The contract every task fulfils: a frozen ``TaskSpec`` of plain functions, read by the one driver.

A task module defines its Params model and functions top to bottom and ends with ``SPEC = TaskSpec(...)``.
Heavy libraries (torch, transformers) are imported inside those functions so that listing tasks stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pandas as pd

    from trainforge.config.schema import RunConfig
    from trainforge.data.loading import Splits


class TaskParams(BaseModel):
    """Base for every task's ``params:`` model: closed, finite numbers only, and immutable."""

    # allow_inf_nan=False: a `.inf`/`.nan` (valid YAML floats) in any float param is a config error, not a NaN run.
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False)


@dataclass(frozen=True)
class Column:
    """A logical column the task reads; ``default`` is the user column name assumed when unmapped.

    ``role`` says what the model does with it: ``input`` (reads it; predict and the playground ask for it),
    ``target`` (learns to predict it), ``weight`` (weighs rows in the loss), ``id`` (kept out of the features) or
    ``features`` (stands for every user column no other logical column takes, each kept under its own name).
    ``kind`` says what a cell holds: ``text``, ``number``, ``label`` (a class, or a list of classes), ``messages``
    (a conversation), ``category``, ``table``, ``image`` (an image: the readers of ``data/images.py`` give the task
    an absolute file path per row; predict also takes a ``data:image/...;base64`` URI or bytes, see
    ``images.open_rgb``); new tasks add theirs (``boxes``...). The web app's column guess, its playground and predict
    read these instead of guessing from names.
    """

    name: str
    help: str
    required: bool = True
    default: str | None = None
    role: str = "input"
    kind: str = "text"

    @property
    def rest(self) -> bool:
        """Whether this column stands for every otherwise unmapped user column."""
        return self.role == "features"

    @property
    def source_default(self) -> str:
        """User column read when ``data.columns`` does not map this one."""
        return self.default or self.name


@dataclass(frozen=True)
class Analysis:
    """What ``analyze`` found in the data, before any model loads; ``validate`` shows it and the run builds on it.

    ``problem_type`` is open (``single_label_classification``, ``regression``, ``causal_lm``, ``preference``, and
    whatever a new task needs); ``names`` are the class or target names (empty when there are none); ``facts`` holds
    anything else a task derives from the data for later steps (e.g. an LLM's data format); ``notes`` are findings
    for the user.
    """

    problem_type: str
    names: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        """Output units of a classification/regression head."""
        return len(self.names)


LabelInfo = Analysis  # the name before core v2; kept for code outside the package that imported it


_UNSET: Any = object()


@dataclass
class RunContext:
    """One run as every spec function sees it: the config, what analysis found, the run directory and events.

    The driver builds it once and hands it to each function, so no function needs its inputs smuggled through
    another's outputs. ``processor`` (tokenizer, image processor) is loaded on first use and then shared: analysis
    (rendering an example), data preparation, model building and the trainer all use the same object.

    ``run_dir`` and ``events`` are None while validating (nothing is written then).
    """

    config: RunConfig
    spec: TaskSpec
    analysis: Analysis | None = None
    run_dir: Path | None = None
    events: Any = None
    notes: list[str] = field(default_factory=list)
    is_main_process: bool = True
    _processor: Any = _UNSET

    @property
    def processor(self) -> Any:
        """The task's processor, loaded once (``spec.load_processor``)."""
        if self._processor is _UNSET:
            self._processor = self.spec.load_processor(self)
        return self._processor

    @property
    def labels(self) -> Analysis:
        """The analysis (set by the check phase); raises if a function runs before it."""
        if self.analysis is None:
            raise RuntimeError("the run context has no analysis yet: analyze runs first")
        return self.analysis

    @property
    def output_dir(self) -> Path:
        """The run directory, for the steps that write; raises when one runs without it (as while validating)."""
        if self.run_dir is None:
            raise RuntimeError("the run context has no run directory: only a training run writes one")
        return self.run_dir


@dataclass
class TrainerInputs:
    """Everything a trainer factory receives; it builds its own arguments class from ``args``.

    ``args`` holds ``transformers.TrainingArguments`` keyword arguments (the driver's translation of ``training:``
    and ``output:``); a TRL, sentence-transformers or Seq2Seq factory passes them to its own config class with its
    additions, a tabular factory ignores them (and ``model``, which is None).
    """

    ctx: RunContext
    model: Any
    prepared: Prepared
    args: dict[str, Any]
    callbacks: list[Any]
    compute_metrics: Callable[[Any], dict[str, float]] | None


@dataclass
class Prepared:
    """Model-ready data produced by a task's ``prepare``; ``test`` is ``splits.test`` encoded as ``eval`` is."""

    train: Any
    eval: Any | None
    collator: Any | None = None
    test: Any | None = None


@runtime_checkable
class Predictor(Protocol):
    """A finished run loaded once (model, tokenizer, thresholds), then called many times.

    ``TaskSpec.load_predictor(run_dir, config)`` returns one; the CLI, the SDK and the web app call ``predict`` on it
    as often as they like. Implementations may be used from several threads (the app serves concurrent requests):
    they serialise whatever is not thread-safe (a fast tokenizer's truncation state, ``generate``) themselves.
    """

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (n rows, the run's input columns) with the task's output columns added (n rows).

        Raises:
            DataError: An input column is missing or holds values the model cannot read.
            RunDirError: The model's outputs are unusable (NaN/inf weights).
        """
        ...


@runtime_checkable
class ChatPredictor(Predictor, Protocol):
    """A text-generation predictor that also answers a conversation (the CLI's ``chat``, the app's chat playground)."""

    def chat(self, messages: list[dict[str, str]], **generation: Any) -> str:
        """The reply to ``messages`` (``{"role", "content"}`` turns, the last one the user's).

        ``generation`` overrides the run's ``max_new_tokens``, ``temperature`` and ``top_p`` for this reply.
        """
        ...


@runtime_checkable
class EmbeddingPredictor(Predictor, Protocol):
    """A predictor that also turns texts into vectors (a sentence-transformers run): ``trainforge serve``'s embeddings.

    Checked with ``isinstance`` on the loaded predictor, so a task gets the embeddings endpoint by implementing it.
    """

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text (n texts -> n lists of d floats, d the model's dimension), in the order given.

        Raises:
            DataError: A text is empty or not a string.
        """
        ...


def predict_once(load_predictor: Callable[[Path, RunConfig], Predictor]) -> Callable[..., pd.DataFrame]:
    """A task's ``predict(run_dir, frame, config)`` made from its predictor loader: load, call once.

    For code that calls ``spec.predict`` directly; the returned function carries ``load_predictor``, which
    ``TaskSpec`` reads when a spec names only ``predict``.
    """

    def predict(run_dir: Path, frame: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
        return load_predictor(Path(run_dir), config).predict(frame)

    predict.load_predictor = load_predictor  # type: ignore[attr-defined]
    predict.__doc__ = f"Load the run's predictor ({getattr(load_predictor, '__name__', 'loader')}) and predict once."
    return predict


@dataclass(frozen=True)
class _PredictPerCall:
    """The predictor of a spec that gives only a ``predict`` function: it loads the model on every call."""

    function: Callable[[Path, pd.DataFrame, RunConfig], pd.DataFrame]
    run_dir: Path
    config: RunConfig

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``function(run_dir, frame, config)``."""
        return self.function(self.run_dir, frame, self.config)


def _loader_of(predict: Callable[[Path, pd.DataFrame, RunConfig], pd.DataFrame]) -> Callable[..., Predictor]:
    """The predictor loader of a spec that names only ``predict``: the one it carries, else a per-call wrapper."""
    carried = getattr(predict, "load_predictor", None)

    def load_predictor(run_dir: Path, config: RunConfig) -> Predictor:
        if carried is not None:
            return carried(Path(run_dir), config)
        return _PredictPerCall(predict, Path(run_dir), config)

    load_predictor.derived_from = predict  # type: ignore[attr-defined]
    return load_predictor


class TrainerLike(Protocol):
    """What the driver needs from a trainer; ``transformers.Trainer`` already satisfies it."""

    def train(self, resume_from_checkpoint: Any = None) -> Any: ...  # noqa: D102
    def evaluate(self, eval_dataset: Any = None, metric_key_prefix: str = "eval") -> dict[str, float]: ...  # noqa: D102
    def save_model(self, output_dir: str | None = None) -> None: ...  # noqa: D102


@dataclass(frozen=True)
class Metric:
    """The metric that selects the best checkpoint, and its direction."""

    name: str
    greater_is_better: bool


AUTOTRAIN_DROP = object()  # returned by AutoTrainShape.values: the reference param is covered elsewhere (noted)


@dataclass(frozen=True)
class AutoTrainShape:
    """How the reference's YAML maps onto this task (see ``config/autotrain.py``)."""

    aliases: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)  # reference column_mapping key -> our logical column
    params: dict[str, str] = field(default_factory=dict)  # reference param -> our params.<name>
    values: Callable[[str, Any], Any] | None = None  # (reference param, value) -> our value; may return DROP
    selector: Callable[[dict], bool] | None = None  # for aliases shared by several specs: does this raw config pick us


@dataclass(frozen=True)
class TaskSpec:
    """Everything the driver, CLI, docs and UI need to know about one task.

    Every function receives the run's ``RunContext`` (config, analysis, processor, run directory, events). The driver
    calls them in this order: ``analyze`` (check phase; reads only), ``load_processor`` (on first use), ``prepare``,
    ``build_model``, ``compute_metrics``/``best_metric``, ``make_trainer``, ``finish``.
    """

    name: str
    summary: str
    params: type[TaskParams]
    columns: tuple[Column, ...]
    analyze: Callable[[RunContext, Splits], Analysis]  # every data check; no model loads
    load_processor: Callable[[RunContext], Any]
    prepare: Callable[[RunContext, Splits], Prepared]
    build_model: Callable[[RunContext], Any]  # None for tasks without a pretrained model (tabular)
    compute_metrics: Callable[[RunContext], Callable[[Any], dict[str, float]] | None]
    best_metric: Callable[[RunContext], Metric]
    predict: Callable[[Path, pd.DataFrame, RunConfig], pd.DataFrame]  # one call; ``predict_once(load_predictor)``
    pipeline_tag: str
    make_trainer: Callable[[TrainerInputs], TrainerLike] | None = None  # None: transformers.Trainer (hf_trainer.py)
    # (run_dir, config) -> Predictor: loads the model once for many predict calls. None: the one that ``predict``
    # carries (``predict_once``), else a wrapper calling ``predict`` each time (specs written before predictors).
    load_predictor: Callable[[Path, RunConfig], Predictor] | None = None
    example: dict[str, Any] = field(default_factory=dict)  # model/data/params shown by `trainforge init`
    stratify_column: str | Callable[[RunConfig], str | None] | None = None  # a callable picks it from the config
    training_defaults: dict[str, Any] = field(default_factory=dict)
    check_config: Callable[[RunConfig], list[tuple[str, str]]] | None = None
    autotrain: AutoTrainShape | None = None
    extras: tuple[tuple[str, str], ...] = ()  # (importable module, pip extra) checked before any data loads
    # False for tasks trained without a pretrained transformers model (tabular): the driver then skips the model
    # source and precision checks and the Trainer-only callbacks; the factory gets no model.
    pretrained_model: bool = True
    # False for tasks that train in one process only (tabular: scikit-learn, XGBoost, LightGBM): of compute:, only the
    # launcher and its SLURM options apply (several processes, machines or a sharding strategy are refused by name).
    distributed: bool = True
    processor: str = "tokenizer"  # what load_processor loads from the model folder: tokenizer, image_processor, none
    # The plain Trainer's logged evaluation of the kept checkpoint is complete, so the final metrics reuse it; TRL
    # trainers add metrics in evaluate() (and a generation eval would be costly to repeat only where it is complete).
    reuse_logged_eval: bool = False
    default_model: str | None = None  # model.name when the config has no model section
    model_card: Callable[[Path, RunConfig], str] | None = None  # task section of README.md (replaces the usage block)
    library_name: str = "transformers"  # model card front matter
    # After training, with the kept model: store what predict needs beyond the weights (decision thresholds tuned on
    # the eval split); (ctx, trainer, prepared) -> notes for the user.
    finish: Callable[[RunContext, Any, Prepared], list[str]] | None = None
    # Shared sections the task reads only in part: section -> the fields it uses. A field it ignores, set to anything
    # but its default, is a config error naming the task (a silently ignored learning rate is a wrong result).
    # Sections not listed apply whole.
    applies: dict[str, frozenset[str]] = field(default_factory=dict)
    applies_why: str = ""  # why the others do not apply, for that message
    # How the app's playground talks to a finished run: "form" (one field per predict input), "chat" (a
    # conversation with a generative model) or "table" (pasted rows: inputs are not fixed columns).
    playground: str = "form"
    # The columns predict reads, when they are not the training columns whose role is "input" (a reward model is
    # trained on pairs but scores one prompt + completion).
    predict_inputs: tuple[Column, ...] = ()
    # PEFT's task type of the LoRA adapter this task can train (SEQ_CLS, TOKEN_CLS, SEQ_2_SEQ_LM, CAUSAL_LM, ...);
    # None: the task trains no adapter, and a peft: section is refused naming it. The driver wraps the built model
    # and, at the end, saves the adapter in adapter/ and the merged model as the run's model (plain transformers
    # loads it) -- unless ``lora_by_trainer``: the task's trainer applies LoRA itself (TRL takes a peft_config) and
    # the run keeps the adapter as its model (LLM runs; peft.merge_adapter adds merged/).
    lora: str | None = None
    lora_by_trainer: bool = False
    # The task's trainer runs its own Optuna study from the ``search:`` section (tabular: model families and
    # ensembling): the driver trains once rather than once per trial, ``search.space`` is optional, and the task's
    # ``check_config`` says which ``search.space`` keys it reads.
    own_search: bool = False
    # Moves the task's older ``params`` names of settings that now live in a shared section (tabular:
    # ``params.num_trials`` -> ``search.trials``) within the raw config, noting each; returns the conflicts found.
    relocate_params: Callable[[dict], list[tuple[str, str]]] | None = None
    # Whether the encoded rows (``input_ids``) go through transformers' Trainer sampler, so that
    # ``training.train_sampling_strategy: auto`` may group them by length (training/sampling.py); tasks whose
    # trainer batches otherwise (TRL packing, sentence-transformers' samplers) leave it False: random order.
    length_grouping: bool = False

    def __post_init__(self) -> None:
        # Not given: derived from ``predict``; derived again when a variant (``dataclasses.replace``) changes predict.
        derived_from = getattr(self.load_predictor, "derived_from", None)
        if self.load_predictor is None or (derived_from is not None and derived_from is not self.predict):
            object.__setattr__(self, "load_predictor", _loader_of(self.predict))  # frozen: set once, here

    def fields_applying(self, section: str) -> frozenset[str] | None:
        """The fields of a shared section this task reads; None when it reads the whole section."""
        if section in self.applies:
            return self.applies[section]
        if section == "compute" and not self.distributed:
            from trainforge.config.sections import ComputeSection

            return frozenset(n for n in ComputeSection.model_fields if n == "launcher" or n.startswith("slurm_"))
        if section == "peft":
            if self.lora is None:
                return frozenset()
            if not self.lora_by_trainer:
                return frozenset({"enabled", "r", "alpha", "dropout", "target_modules"})
        return None

    def why_not_applying(self, section: str) -> str:
        """Why fields of ``section`` outside ``fields_applying`` do not apply, for the error message."""
        if section == "compute" and section not in self.applies and not self.distributed:
            return (
                "it trains in one process: its models are not trained by a distributed Trainer; a SLURM job "
                "(compute.launcher: slurm) still runs it on a cluster node"
            )
        if section == "peft" and section not in self.applies:
            if self.lora is None:
                return "it trains no LoRA adapter"
            return (
                "QLoRA and merge_adapter are for LLM runs; this task's run folder always holds the merged model, "
                "with the adapter in adapter/"
            )
        return self.applies_why

    def inputs_to_predict(self) -> tuple[Column, ...]:
        """The columns ``predict`` (and the playground form) asks for."""
        return self.predict_inputs or tuple(c for c in self.columns if c.role == "input" and c.required)
