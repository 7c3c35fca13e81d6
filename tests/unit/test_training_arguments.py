"""The one translation to TrainingArguments speaks the installed libraries' current names.

A keyword the installed transformers/TRL/sentence-transformers deprecated prints a FutureWarning in the middle of every
run's output (transformers 5.24: ``gradient_checkpointing`` -> ``activation_checkpointing``); the arguments every
trainer factory builds must construct without one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from trainforge.config.loading import load_config
from trainforge.tasks.spec import Metric
from trainforge.training.arguments import training_arguments


def _argument_classes():
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    classes = [TrainingArguments, Seq2SeqTrainingArguments]
    try:
        from trl import DPOConfig, RewardConfig, SFTConfig

        classes += [SFTConfig, DPOConfig, RewardConfig]
    except ImportError:
        pass
    try:
        from sentence_transformers import SentenceTransformerTrainingArguments

        classes.append(SentenceTransformerTrainingArguments)
    except ImportError:
        pass
    return classes


@pytest.mark.parametrize("checkpointing", [False, True])
def test_arguments_build_every_trainers_class_without_a_deprecation_warning(base_config, tmp_path, checkpointing):
    base_config["training"]["gradient_checkpointing"] = checkpointing
    args = training_arguments(load_config(base_config), Path(tmp_path / "run"), True, Metric("f1", True), 100)
    for cls in _argument_classes():
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            warnings.simplefilter("error", DeprecationWarning)
            built = cls(**args)
        # The setting reaches the trainer under either name (the old one mirrors the new one in 5.24+).
        assert built.gradient_checkpointing is checkpointing, cls.__name__
