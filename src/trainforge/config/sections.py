"""Shared config sections, composed as fields of the root ``RunConfig``.

Every field carries its default and help text here; the CLI, ``trainforge init``, the docs tables and the
web UI all read them from this module. ``tier`` marks what a form shows first ("basic") or hides ("advanced").
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.config import JsonDict

from trainforge.config.choices import DataFormat, EvalStrategy, Optimizer, Precision, ReportTo, Scheduler

# The form tier of a field (what a form shows first, or hides), one source for every section and task.
BASIC: JsonDict = {"tier": "basic"}
ADVANCED: JsonDict = {"tier": "advanced"}


class Section(BaseModel):
    """Base for every section: closed (unknown keys are errors), finite numbers only, immutable after validation."""

    # allow_inf_nan=False: YAML reads `.inf`/`.nan` as floats, and an infinite learning rate trains to NaN weights.
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False)


class ModelSection(Section):
    """Which pretrained model to start from."""

    name: str = Field(
        description="Base model: a Hugging Face Hub id (org/name) or a local folder saved with save_pretrained.",
        json_schema_extra=BASIC,
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit) to load.", json_schema_extra=ADVANCED
    )
    trust_remote_code: bool = Field(
        False,
        description="Allow the model repository to run its own Python code. Off unless you trust it.",
        json_schema_extra=ADVANCED,
    )


class DataSection(Section):
    """Where the data lives, how its columns map to the task, and how the evaluation split is made."""

    source: str = Field(
        description=(
            "A file (.csv, .tsv, .jsonl, .json, .parquet), a folder holding <split>.<ext> files or a dataset saved "
            "with datasets' save_to_disk, or a Hub dataset id."
        ),
        json_schema_extra=BASIC,
    )
    format: DataFormat = Field(
        "auto", description="File format; 'auto' infers it from the extension.", json_schema_extra=ADVANCED
    )
    train_split: str = Field(
        "train", description="Training split: file stem in a folder, or split name.", json_schema_extra=BASIC
    )
    eval_split: str | None = Field(
        None,
        description="Evaluation split name (or a file path when `source` is a file). Overrides eval_fraction.",
        json_schema_extra=BASIC,
    )
    eval_fraction: float | None = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description=(
            "Hold out this fraction of the training rows for evaluation (seeded; stratified for classification) "
            "when no eval_split is given. 0 or null trains without evaluation."
        ),
        json_schema_extra=BASIC,
    )
    test_split: str | None = Field(
        None,
        description=(
            "Test split name (or a file path when `source` is a file): scored once after training with the kept "
            "model and reported as test_* metrics; never used for training or checkpoint selection."
        ),
        json_schema_extra=ADVANCED,
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Map the task's logical columns to your column names, e.g. {text: sentence, label: label}.",
        json_schema_extra=BASIC,
    )
    max_train_rows: int | None = Field(
        None, gt=0, description="Use only the first N training rows (before any split).", json_schema_extra=ADVANCED
    )
    max_eval_rows: int | None = Field(
        None, gt=0, description="Use only the first N evaluation rows.", json_schema_extra=ADVANCED
    )
    hub_config: str | None = Field(None, description="Hub dataset configuration name.", json_schema_extra=ADVANCED)

    @model_validator(mode="before")
    @classmethod
    def _one_eval_policy(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("test_split"):
            if data["test_split"] == data.get("train_split", "train"):
                raise ValueError("test_split names the training split; test on rows the model never trains on")
            if data["test_split"] == data.get("eval_split"):
                raise ValueError(
                    "test_split names the evaluation split, which selects the best checkpoint: a test score on it "
                    "would be optimistic; name another split"
                )
        if not isinstance(data, dict) or not data.get("eval_split"):
            return data
        if data.get("eval_fraction"):
            raise ValueError("set either eval_split or eval_fraction, not both")
        if data["eval_split"] == data.get("train_split", "train"):
            raise ValueError("eval_split names the training split; evaluate on other rows (a split, eval_fraction)")
        # A named split turns the default hold-out off, so the resolved config (eval_fraction: null) reloads.
        return {**data, "eval_fraction": None}


class TrainingSection(Section):
    """Optimisation settings; names follow transformers.TrainingArguments where they overlap."""

    num_train_epochs: float = Field(
        3.0, gt=0, description="Number of passes over the training data.", json_schema_extra=BASIC
    )
    max_steps: int = Field(
        -1, description="Stop after this many optimizer steps (overrides epochs when > 0).", json_schema_extra=ADVANCED
    )
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.", json_schema_extra=BASIC)
    per_device_train_batch_size: int = Field(
        8, gt=0, description="Training batch size per device.", json_schema_extra=BASIC
    )
    per_device_eval_batch_size: int | None = Field(
        None,
        gt=0,
        description="Evaluation batch size per device (default: twice the training batch).",
        json_schema_extra=ADVANCED,
    )
    gradient_accumulation_steps: int = Field(
        1, gt=0, description="Accumulate gradients over this many batches.", json_schema_extra=ADVANCED
    )
    warmup_ratio: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Fraction of steps spent warming the learning rate up.",
        json_schema_extra=ADVANCED,
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.", json_schema_extra=ADVANCED)
    max_grad_norm: float = Field(
        1.0, ge=0, description="Gradient clipping norm (0 disables).", json_schema_extra=ADVANCED
    )
    lr_scheduler_type: Scheduler = Field("linear", description="Learning-rate schedule.", json_schema_extra=ADVANCED)
    optim: Optimizer = Field(
        "adamw_torch_fused",
        description="Optimizer (default adamw_torch_fused: transformers' default, 10% faster steps on CPU).",
        json_schema_extra=ADVANCED,
    )
    precision: Precision = Field(
        "auto",
        description="Numeric precision: auto picks bf16/fp16 on a capable GPU and fp32 on CPU.",
        json_schema_extra=BASIC,
    )
    seed: int = Field(
        42,
        ge=0,
        lt=2**32,
        description="Seed for splits, initialisation, shuffling and dropout.",
        json_schema_extra=BASIC,
    )
    logging_steps: int | None = Field(
        None,
        gt=0,
        description="Log the training loss every N steps (default: about 50 logs per run, at least every 25 steps).",
        json_schema_extra=ADVANCED,
    )
    eval_strategy: EvalStrategy = Field(
        "epoch", description="When to evaluate (and checkpoint).", json_schema_extra=ADVANCED
    )
    eval_on_start: bool = Field(
        False,
        description="Also evaluate before the first step, recording the starting metrics later evals are compared to.",
        json_schema_extra=ADVANCED,
    )
    eval_steps: int | None = Field(
        None, gt=0, description="Evaluate every N steps when eval_strategy is 'steps'.", json_schema_extra=ADVANCED
    )
    metric_for_best_model: str | None = Field(
        None,
        description="Eval metric that picks the best checkpoint and drives early stopping (default: the task's).",
        json_schema_extra=ADVANCED,
    )
    early_stopping_patience: int | None = Field(
        3,
        ge=1,
        description="Stop after this many evaluations without improvement (null disables).",
        json_schema_extra=ADVANCED,
    )
    early_stopping_threshold: float = Field(
        0.0, ge=0, description="Minimum improvement of the metric that counts.", json_schema_extra=ADVANCED
    )
    save_total_limit: int = Field(
        1, ge=1, description="Checkpoints kept besides the best one.", json_schema_extra=ADVANCED
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.", json_schema_extra=ADVANCED)
    auto_find_batch_size: bool = Field(
        False, description="Halve the batch size on out-of-memory errors.", json_schema_extra=ADVANCED
    )
    dataloader_num_workers: int = Field(
        0, ge=0, description="Worker processes for data loading.", json_schema_extra=ADVANCED
    )
    train_sampling_strategy: Literal["auto", "random", "group_by_length"] = Field(
        "auto",
        description=(
            "group_by_length: batches of rows of similar length (less padding, faster; shuffled in groups of 50 "
            "batches, so on small data whose lengths follow the labels, batches skew by class); random; auto: "
            "grouped when it saves at least 20% of padded tokens, the data holds 4 groups of 50 batches and row "
            "length says little about the label (a note says which and why)."
        ),
        json_schema_extra=ADVANCED,
    )

    @field_validator("eval_strategy", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `no` (in a file or a `training.eval_strategy=no` override) as false.
        return "no" if value is False else value

    @model_validator(mode="after")
    def _eval_steps_needed(self) -> TrainingSection:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("eval_strategy 'steps' needs eval_steps")
        return self


class OutputSection(Section):
    """Where the run directory goes and what it records."""

    dir: str = Field(
        "runs/run",
        description="Run directory: model, config, metrics, events, checkpoints (default runs/<task>).",
        json_schema_extra=BASIC,
    )
    overwrite: bool = Field(
        False,
        description="Replace an existing finished run in `dir` (otherwise that is an error).",
        json_schema_extra=ADVANCED,
    )
    report_to: list[ReportTo] = Field(
        ["tensorboard"], description="Loggers besides events.jsonl.", json_schema_extra=ADVANCED
    )
    save_checkpoints: bool = Field(
        True, description="Write checkpoints (needed for --resume).", json_schema_extra=ADVANCED
    )
    keep_checkpoints: bool = Field(
        False,
        description=(
            "Keep checkpoints/ once the run has finished (with optimizer state they are several times the model's "
            "size; the final model is already in the run directory)."
        ),
        json_schema_extra=ADVANCED,
    )

    @field_validator("dir")
    @classmethod
    def _a_folder(cls, value: str) -> str:
        # An empty dir is the current folder: a run would be mixed into whatever the command was started in.
        if not value.strip():
            raise ValueError("is empty: name a folder for the run (e.g. runs/my-run)")
        return value


class PeftSection(Section):
    """Parameter-efficient fine-tuning (LoRA through PEFT), for any task that fine-tunes a transformers model.

    Tasks whose run folder must load with plain transformers (classification, seq2seq, ...) save the adapter in
    ``adapter/`` and the adapter merged into the base as the run's model; LLM runs keep the adapter as the model
    (``merge_adapter`` adds a merged copy in ``merged/``).
    """

    enabled: bool = Field(False, description="Train a LoRA adapter instead of every weight.", json_schema_extra=BASIC)
    r: int = Field(16, gt=0, description="LoRA rank.", json_schema_extra=ADVANCED)
    alpha: int = Field(
        32, gt=0, description="LoRA scaling (alpha / r multiplies the update).", json_schema_extra=ADVANCED
    )
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.", json_schema_extra=ADVANCED)
    target_modules: str | list[str] = Field(
        "all-linear",
        description="Modules LoRA adapts: 'all-linear', a list, or a comma-separated string.",
        json_schema_extra=ADVANCED,
    )
    quantization: Literal["int4", "int8"] | None = Field(
        None,
        description="QLoRA: load the frozen base in 4 or 8 bits (needs enabled, a CUDA GPU and bitsandbytes).",
        json_schema_extra=ADVANCED,
    )
    merge_adapter: bool = Field(
        False,
        description="LLM runs: also write the adapter merged into the base as a full model in merged/.",
        json_schema_extra=ADVANCED,
    )

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, data: Any) -> Any:
        # `peft: true` (the reference's spelling of the switch) is `peft: {enabled: true}`.
        return {"enabled": data} if isinstance(data, bool) else data

    @field_validator("target_modules")
    @classmethod
    def _split_modules(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) and value != "all-linear":
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError("name at least one module, or 'all-linear'")
        return value

    @model_validator(mode="after")
    def _needs_enabled(self) -> PeftSection:
        if self.quantization and not self.enabled:
            raise ValueError("quantization (QLoRA) needs peft (enabled: true): it trains an adapter on a frozen base")
        if self.merge_adapter and not self.enabled:
            raise ValueError("merge_adapter needs peft (enabled: true): a full fine-tune is already a full model")
        return self


class SearchDimension(Section):
    """One searched key: exactly one of ``loguniform``, ``uniform`` or ``int`` (bounds, inclusive) or ``choice``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False, populate_by_name=True
    )

    loguniform: tuple[float, float] | None = Field(None, description="Sampled on a log scale between the bounds.")
    uniform: tuple[float, float] | None = Field(None, description="Sampled uniformly between the bounds.")
    integer: tuple[int, int] | None = Field(None, alias="int", description="An integer between the bounds.")
    choice: list[Any] | None = Field(None, min_length=1, description="One of these values.")

    @model_validator(mode="after")
    def _one_kind(self) -> SearchDimension:
        kinds = [k for k in ("loguniform", "uniform", "integer", "choice") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of loguniform: [low, high], uniform: [low, high], int: [low, high], choice: [...]"
            )
        bounds = getattr(self, kinds[0]) if kinds[0] != "choice" else None
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"{kinds[0]} bounds must be [low, high] with low < high (got {list(bounds)})")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform bounds must be > 0 (a log scale)")
        return self

    def extremes(self) -> list[Any]:
        """The values that bound what this dimension can sample (checked like user input at validation)."""
        if self.choice is not None:
            return list(self.choice)
        low, high = self.loguniform or self.uniform or self.integer or (None, None)
        return [low, high]


class SearchSection(Section):
    """Hyperparameter search with Optuna over any config key: one sub-run per trial, the best one kept."""

    trials: int = Field(
        0, ge=0, description="Trials to run (0: no search, one run as configured).", json_schema_extra=BASIC
    )
    timeout: float | None = Field(
        None, gt=0, description="Stop starting new trials after this many seconds.", json_schema_extra=ADVANCED
    )
    metric: str | None = Field(
        None,
        description="Metric to optimise, e.g. eval_f1 (default: the task's best-checkpoint metric).",
        json_schema_extra=ADVANCED,
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="Default: the metric's own direction.", json_schema_extra=ADVANCED
    )
    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe",
        description="tpe (seeded with training.seed), random, or grid (every combination of choice keys).",
        json_schema_extra=ADVANCED,
    )
    pruner: Literal["median", "successive_halving", "none"] = Field(
        "median",
        description="Stop a trial early when its intermediate evaluations lag the others'.",
        json_schema_extra=ADVANCED,
    )
    pruner_startup_trials: int = Field(
        3, ge=0, description="Trials that finish before the median pruner prunes.", json_schema_extra=ADVANCED
    )
    space: dict[str, SearchDimension] = Field(
        default_factory=dict,
        description=(
            "Config keys to search, e.g. {training.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}, "
            "training.per_device_train_batch_size: {choice: [8, 16]}, peft.r: {int: [4, 64]}}."
        ),
        json_schema_extra=BASIC,
    )
    storage: str | None = Field(
        None,
        description=(
            "Optuna storage URL shared by several `trainforge train` processes (sqlite:///..., postgresql://...); "
            "default: search/study.db in the run directory."
        ),
        json_schema_extra=ADVANCED,
    )
    study_name: str = Field("trainforge", description="Study name within the storage.", json_schema_extra=ADVANCED)

    @model_validator(mode="after")
    def _space_needed(self) -> SearchSection:
        if self.sampler == "grid" and any(d.choice is None for d in self.space.values()):
            raise ValueError("the grid sampler needs every space key as a choice: [...] list")
        return self


class ComputeSection(Section):
    """Where and how many processes train: one or several machines, DDP, FSDP or DeepSpeed, locally or on SLURM.

    More than one process re-launches ``trainforge train`` through ``accelerate launch`` (docs/compute.md);
    mixed precision and gradient checkpointing stay in ``training:`` (``precision``, ``gradient_checkpointing``).
    """

    num_processes: int = Field(
        1,
        ge=1,
        description=(
            "Training processes per machine: one per GPU (on a CPU-only machine, processes that share its cores, "
            "DDP over gloo). More than one re-launches trainforge train through accelerate launch."
        ),
        json_schema_extra=BASIC,
    )
    num_machines: int = Field(1, ge=1, description="Machines training together.", json_schema_extra=ADVANCED)
    machine_rank: int = Field(
        0,
        ge=0,
        description="This machine's rank among num_machines (0: the main machine, which writes the run).",
        json_schema_extra=ADVANCED,
    )
    main_process_ip: str | None = Field(
        None,
        description="Address of the machine of rank 0, reachable from every machine (needed for num_machines > 1).",
        json_schema_extra=ADVANCED,
    )
    main_process_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port on the main machine (default: a free port on one machine; 29500 across machines).",
        json_schema_extra=ADVANCED,
    )
    strategy: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp",
        description=(
            "ddp (a full copy of the model per process), fsdp (parameters, gradients and optimizer state sharded "
            "over the processes) or deepspeed (ZeRO; needs the deepspeed package)."
        ),
        json_schema_extra=BASIC,
    )
    fsdp_version: Literal[1, 2] = Field(
        2,
        description="FSDP version: 2 (per-parameter sharding, PyTorch's current one) or 1.",
        json_schema_extra=ADVANCED,
    )
    fsdp_sharding: Literal["full_shard", "shard_grad_op", "hybrid_shard", "no_shard"] = Field(
        "full_shard",
        description=(
            "What FSDP shards: full_shard (everything), shard_grad_op (gradients and optimizer state; parameters "
            "stay gathered after forward), hybrid_shard and no_shard (fsdp_version 1 only)."
        ),
        json_schema_extra=ADVANCED,
    )
    fsdp_offload_params: bool = Field(
        False, description="FSDP: keep parameters and gradients in CPU memory.", json_schema_extra=ADVANCED
    )
    fsdp_auto_wrap: Literal["transformer_layer", "size"] = Field(
        "transformer_layer",
        description="FSDP wrapping: one unit per transformer layer, or per fsdp_min_num_params parameters.",
        json_schema_extra=ADVANCED,
    )
    fsdp_layer_class: str | None = Field(
        None,
        description="FSDP: layer classes to wrap, comma-separated (default: the model's own, e.g. LlamaDecoderLayer).",
        json_schema_extra=ADVANCED,
    )
    fsdp_min_num_params: int = Field(
        100_000_000,
        ge=1,
        description="FSDP with fsdp_auto_wrap 'size': parameters per wrapped unit.",
        json_schema_extra=ADVANCED,
    )
    deepspeed_stage: Literal[0, 1, 2, 3] = Field(
        2,
        description="DeepSpeed ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also parameters.",
        json_schema_extra=ADVANCED,
    )
    deepspeed_offload_optimizer: Literal["none", "cpu", "nvme"] = Field(
        "none", description="DeepSpeed: where optimizer state lives.", json_schema_extra=ADVANCED
    )
    deepspeed_offload_params: Literal["none", "cpu", "nvme"] = Field(
        "none", description="DeepSpeed ZeRO-3: where parameters live.", json_schema_extra=ADVANCED
    )
    deepspeed_nvme_path: str | None = Field(
        None, description="DeepSpeed: folder on an NVMe disk for 'nvme' offload.", json_schema_extra=ADVANCED
    )
    accelerate_config: str | None = Field(
        None,
        description=(
            "Your own accelerate config file (from `accelerate config`) instead of strategy and its options; "
            "compute keys you set explicitly override it."
        ),
        json_schema_extra=ADVANCED,
    )
    launcher: Literal["local", "slurm"] = Field(
        "local",
        description="local (this machine), or slurm: submit the run to a SLURM cluster (needs submitit).",
        json_schema_extra=BASIC,
    )
    slurm_partition: str | None = Field(None, description="SLURM partition.", json_schema_extra=ADVANCED)
    slurm_account: str | None = Field(None, description="SLURM account to charge.", json_schema_extra=ADVANCED)
    slurm_qos: str | None = Field(None, description="SLURM quality of service.", json_schema_extra=ADVANCED)
    slurm_constraint: str | None = Field(None, description="SLURM node constraint.", json_schema_extra=ADVANCED)
    slurm_time_min: int = Field(60, gt=0, description="SLURM time limit in minutes.", json_schema_extra=ADVANCED)
    slurm_gpus_per_node: int = Field(
        0, ge=0, description="GPUs per node (usually num_processes).", json_schema_extra=ADVANCED
    )
    slurm_cpus_per_task: int | None = Field(
        None, gt=0, description="CPU cores for each node's task (all its processes).", json_schema_extra=ADVANCED
    )
    slurm_mem_gb: float | None = Field(None, gt=0, description="Memory per node in GB.", json_schema_extra=ADVANCED)
    slurm_job_name: str = Field("trainforge", description="SLURM job name.", json_schema_extra=ADVANCED)
    slurm_setup: list[str] = Field(
        default_factory=list,
        description="Shell lines run before training on each node (module load ..., source .venv/bin/activate).",
        json_schema_extra=ADVANCED,
    )
    slurm_additional: dict[str, str] = Field(
        default_factory=dict,
        description="Other sbatch options, e.g. {mail-type: END, exclusive: ''}.",
        json_schema_extra=ADVANCED,
    )
    slurm_workers: int = Field(
        1,
        ge=1,
        description="With a search: array tasks that work the study together (each runs trials on its own).",
        json_schema_extra=ADVANCED,
    )
    slurm_wait: bool = Field(
        False,
        description="Wait for the job to end and exit with its outcome (otherwise submit and return).",
        json_schema_extra=ADVANCED,
    )

    @property
    def world_size(self) -> int:
        """Processes over all machines."""
        return self.num_processes * self.num_machines


class HubSection(Section):
    """Publishing the finished model to the Hugging Face Hub (``trainforge push`` takes the same settings)."""

    push: bool = Field(
        False,
        description=(
            "Upload the finished run (model, tokenizer, card, metrics, logs; never checkpoints) to the Hub after "
            "training. Needs a token in HF_TOKEN or from `hf auth login`."
        ),
        json_schema_extra=BASIC,
    )
    repo_id: str | None = Field(
        None, description="Target repository, e.g. your-name/my-model.", json_schema_extra=BASIC
    )
    private: bool = Field(
        True,
        description="Create the repository as private; a public one is only published to when this is false.",
        json_schema_extra=ADVANCED,
    )
    revision: str | None = Field(
        None,
        description="Branch to commit to (created from main when missing); default: main.",
        json_schema_extra=ADVANCED,
    )
    license: str | None = Field(
        None,
        description=(
            "License id in the model card (e.g. apache-2.0, mit, other); default: the base model's, when its card "
            "states one."
        ),
        json_schema_extra=ADVANCED,
    )
    token: SecretStr | None = Field(
        None,
        description=(
            "Only as a reference to an environment variable, e.g. ${HF_TOKEN} (a token written here is ignored, "
            "with a note). Default: HF_TOKEN or the `hf auth login` cache. Never written to disk."
        ),
        json_schema_extra=ADVANCED,
    )

    @field_validator("revision")
    @classmethod
    def _branch_name(cls, value: str | None) -> str | None:
        if value is not None and not _BRANCH.match(value):
            raise ValueError(
                f"{value!r} is not a branch name: letters, digits, '.', '_', '-' and '/' (no '..', no leading or "
                "trailing '/')"
            )
        return value

    @field_validator("license")
    @classmethod
    def _license_id(cls, value: str | None) -> str | None:
        if value is not None and not _LICENSE.match(value):
            raise ValueError(f"{value!r} is not a Hub license id (lowercase, e.g. apache-2.0, mit, cc-by-4.0, other)")
        return value

    @model_validator(mode="after")
    def _repo_needed(self) -> HubSection:
        if self.push and not self.repo_id:
            raise ValueError("push: true needs repo_id (e.g. your-name/my-model)")
        if self.push and self.repo_id:  # checked when it is used: a run that never pushes keeps loading
            from huggingface_hub.utils import validate_repo_id

            try:
                validate_repo_id(self.repo_id)
            except ValueError as exc:  # HFValidationError: characters, length, "--", "..", more than one "/"
                message = f"repo_id {self.repo_id!r} is not a Hub repository id (your-name/model-name): {exc}"
                raise ValueError(message) from None
        return self


_BRANCH = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<!/)(?<!\.lock)$")
_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")


def section_defaults(section: type[BaseModel]) -> dict[str, Any]:
    """Defaults of a section's optional fields, for ``init`` templates and docs."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in section.model_fields.items()
        if not field.is_required()
    }
