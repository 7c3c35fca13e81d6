"""The run's tokenizer: loaded once per run, its chat template installed once.

The template is the model's own or a built-in one; the tokens a built-in template adds are tracked for LoRA.
"""

from __future__ import annotations

from trainforge.errors import ConfigError
from trainforge.tasks.llm._models import model_location

# Built-in templates: (jinja, eos, additional special tokens). Each closes an assistant turn with its EOS.
BUILTIN_TEMPLATES = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
        "'<|im_end|>' + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        "<|im_end|>",
        ["<|im_start|>", "<|im_end|>"],
    ),
    "zephyr": (
        "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '</s>' + '\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}",
        "</s>",
        ["<|system|>", "<|user|>", "<|assistant|>", "</s>"],
    ),
    "llama3": (
        "{{ '<|begin_of_text|>' }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
        "<|eot_id|>",
        ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    ),
}


def load_processor(ctx):
    """The run's tokenizer, loaded once per run (``RunContext.processor``); ``analyze`` installs its template."""
    return load_tokenizer(ctx.config)


def load_tokenizer(config):
    """The base tokenizer with a pad token (EOS when missing) and the configured padding side; no template yet."""
    from transformers import AutoTokenizer

    folder, gguf = model_location(config.model.name)
    tokenizer = AutoTokenizer.from_pretrained(
        folder, gguf_file=gguf, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    from trainforge.models.config_checks import padding_problems

    problems = padding_problems(tokenizer, config)  # embeddings are resized to the tokenizer: only padding can fail
    if problems:
        raise ConfigError(problems)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = config.params.padding_side
    return tokenizer


def template_choice(config, data_format: str, has_own: bool) -> str | None:
    """Which template a run uses: 'tokenizer', a built-in name, or None (plain text)."""
    chosen = config.params.chat_template
    if chosen == "none":
        return None
    if chosen == "tokenizer":
        return "tokenizer" if has_own else "chatml"
    if chosen is not None:
        return chosen
    if data_format == "messages":
        return "tokenizer" if has_own else "chatml"
    if data_format in ("prompt_completion", "alpaca", "preference") and has_own:
        return "tokenizer"
    return None


def configure_tokenizer(tokenizer, config, data_format: str) -> list[str]:
    """Install the run's chat template on ``tokenizer`` (in place) and make EOS close every assistant turn.

    Returns:
        Notes for the user (template chosen, tokens added, EOS changes).
    """
    has_own = bool(getattr(tokenizer, "chat_template", None))
    choice = template_choice(config, data_format, has_own)
    notes = []
    if choice is None:
        tokenizer.chat_template = None  # the saved tokenizer tells predict/chat: plain prompts, no template
        return [f"no chat template: {data_format} rows are trained as plain text"]
    if choice == "tokenizer":
        notes.append("chat template: the model's own")
    else:
        jinja, eos, specials = BUILTIN_TEMPLATES[choice]
        added = tokenizer.add_special_tokens({"extra_special_tokens": specials}, replace_extra_special_tokens=False)
        tokenizer.chat_template = jinja
        tokenizer.eos_token = eos
        if config.params.chat_template is None:
            notes.append(f"chat template: built-in {choice} (the model has none)")
        else:
            notes.append(f"chat template: built-in {choice}")
        if added:
            notes.append(f"added {added} special token(s); embeddings are resized")
    turn_end = assistant_turn_end(tokenizer)
    if turn_end is not None and turn_end != tokenizer.eos_token:
        notes.append(
            f"EOS set to {turn_end!r}, the token that closes the template's assistant turn "
            f"(was {tokenizer.eos_token!r})"
        )
        tokenizer.eos_token = turn_end
    elif turn_end is None:
        notes.append(f"the template ends assistant turns without a special token: {tokenizer.eos_token!r} is appended")
    return notes


def assistant_turn_end(tokenizer) -> str | None:
    """The special token the template writes right after an assistant message (None when there is none)."""
    probe = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong"}]
    text = tokenizer.apply_chat_template(probe, tokenize=False)
    tail = text[text.rfind("pong") + 4 :]
    if tokenizer.eos_token and tail.lstrip().startswith(tokenizer.eos_token):
        return tokenizer.eos_token
    specials = sorted(set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab()), key=len, reverse=True)
    stripped = tail.lstrip()
    return next((token for token in specials if token and stripped.startswith(token)), None)


def set_up_tokenizer(ctx, template_format: str) -> list[str]:
    """Install the run's template on the run's tokenizer (once, by ``analyze``); returns the setup notes.

    The base vocabulary size is kept in ``ctx`` so that ``prepare`` knows which ids the template added.
    """
    tokenizer = ctx.processor
    ctx.base_vocab_size = len(tokenizer)
    return configure_tokenizer(tokenizer, ctx.config, template_format)


def added_token_ids(ctx) -> list[int]:
    """Ids beyond the base vocabulary (added by a built-in template)."""
    return list(range(getattr(ctx, "base_vocab_size", len(ctx.processor)), len(ctx.processor)))


def tokenizer_for(config, data_format: str):
    """A tokenizer set up exactly as a run's (template, special tokens, EOS), with the setup notes.

    For code outside a run (inspecting a config); a run sets up its one tokenizer with ``set_up_tokenizer``.
    """
    tokenizer = load_tokenizer(config)
    notes = configure_tokenizer(tokenizer, config, data_format)
    return tokenizer, notes


def require_template_for(config, data_format: str) -> None:
    """Conversational data cannot be trained without a template."""
    if data_format in ("messages", "conversational") and config.params.chat_template == "none":
        raise ConfigError(
            [
                (
                    "params.chat_template",
                    "'none', but the data is conversational (lists of turns): "
                    "choose tokenizer, chatml, zephyr or llama3",
                )
            ]
        )
