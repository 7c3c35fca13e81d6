"""LLM fine-tuning tasks (SFT, generic causal LM, DPO, ORPO, reward): loops delegated to TRL.

Shared pieces, one responsibility each: ``_params`` (the params every LLM task shares, the reference's names),
``_tokenizer`` (the run's one tokenizer and its chat template), ``_models`` (base model files, loading policy,
LoRA, merging), ``_trainers`` (the TRL trainer factory and its mixin), ``_data`` (accepted data shapes, encoding),
``_inference`` (a finished run's predictor and chat), ``_base`` (the spec every LLM task starts from) and
``_preference`` (pairs for DPO, ORPO and reward). Each task module reads top to bottom and ends with its ``SPEC``.
"""
