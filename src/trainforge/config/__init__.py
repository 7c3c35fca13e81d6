"""Typed configuration: sections, the root model, YAML loading and the AutoTrain translator."""

from trainforge.config.loading import dump_resolved, load_config
from trainforge.config.schema import RunConfig

__all__ = ["RunConfig", "dump_resolved", "load_config"]
