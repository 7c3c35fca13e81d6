"""LLM fine-tuning tasks (SFT, generic causal LM, DPO, ORPO, reward): loops delegated to TRL.

``_shared`` holds tokenizer/chat-template setup, model loading (Hub id, folder or GGUF file), LoRA/QLoRA and the
TRL config mapping; ``_data`` detects and encodes the accepted data shapes; ``_inference`` loads a finished run
for ``predict`` and ``chat``. Each task module reads top to bottom and ends with its ``SPEC``.
"""
