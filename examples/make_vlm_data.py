"""Write the vlm example's data (coloured shapes, their captions and questions), and optionally a tiny random VLM.

    python examples/make_vlm_data.py                            # examples/vlm/data/{train,validation}/
    python examples/make_vlm_data.py --model runs/tiny-llava     # also a tiny LLaVA that trains on it in seconds

Each split folder holds ``images/*.png`` and a ``metadata.jsonl`` (the Hugging Face imagefolder layout) whose rows
hold ``file_name``, ``caption`` ("a red square"), and a ``question`` with its ``answer`` ("what colour is the
shape?" -> "red"): the captioning example reads image + caption, the VQA example image + question + answer.

No pretrained vision-language weights come with trainforge; ``--model`` builds a randomly initialised LLaVA (a
2-layer CLIP vision tower on 32-pixel images, a 2-layer Llama, about 0.1M parameters) with a byte-level BPE
tokenizer trained on these texts and a ChatML template, saved with its ``LlavaProcessor``. The tests build the
same model (``tests/tasks/_vlm_fixtures.py``).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLOURS = {"red": (210, 40, 40), "blue": (40, 60, 210), "green": (40, 170, 60), "yellow": (230, 210, 40)}
SHAPES = ("square", "disk")
QUESTIONS = {"what colour is the shape?": "colour", "what shape is it?": "shape"}
# ChatML whose turns hold a string or a list of parts ({"type": "image"} / {"type": "text", "text": ...}), the shape
# transformers' processors render; each image part becomes the processor's image token.
TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def draw(colour: str, shape: str, seed: int, size: int = 32):
    """A ``size``-pixel PIL image: a ``shape`` filled with ``colour`` on a noisy grey background (seeded)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size))
    image.putdata([tuple(rng.randint(90, 150) for _ in range(3)) for _ in range(size * size)])
    low, high = rng.randint(3, size // 4), rng.randint(3 * size // 4, size - 3)
    box = (low, low, high, high)
    pen = ImageDraw.Draw(image)
    (pen.rectangle if shape == "square" else pen.ellipse)(box, fill=COLOURS[colour])
    return image


def write_split(folder: Path, rows: int, seed: int) -> list[dict]:
    """``folder/images/<i>.png`` and ``folder/metadata.jsonl`` for ``rows`` random shapes; returns the records."""
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(rows):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        draw(colour, shape, seed * 100_000 + i).save(folder / "images" / f"{i}.png")
        question = rng.choice(list(QUESTIONS))
        answer = colour if QUESTIONS[question] == "colour" else shape
        records.append(
            {
                "file_name": f"images/{i}.png",
                "caption": f"a {colour} {shape}",
                "question": question,
                "answer": answer,
            }
        )
    text = "".join(json.dumps(record) + "\n" for record in records)
    (folder / "metadata.jsonl").write_text(text, encoding="utf-8")
    return records


def corpus() -> list[str]:
    """Every text of the example (captions, questions, answers, the default prompt), for the tiny tokenizer."""
    texts = [f"a {colour} {shape}" for colour in COLOURS for shape in SHAPES]
    texts += list(QUESTIONS) + list(COLOURS) + list(SHAPES) + ["Describe the image.", "user assistant system"]
    return texts * 20


def build_tiny_llava(folder: Path, texts: Iterable[str] = (), vocab_size: int = 320, seed: int = 0) -> str:
    """A tiny random LLaVA and its processor (CLIP image processor, BPE tokenizer, ChatML template) in ``folder``.

    Args:
        folder: Where ``save_pretrained`` writes the model and the processor.
        texts: Texts the tokenizer is trained on (besides the example's own, ``corpus()``).
        vocab_size: The tokenizer's vocabulary (byte-level BPE: 256 bytes plus merges and 5 special tokens).
        seed: Seeds the random weights.

    Returns:
        ``folder`` as a string (a ``model.name``).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<pad>", "<|im_start|>", "<|im_end|>", "<image>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    learner = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([*corpus(), *texts], learner)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    images = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    # 32-pixel images in 8-pixel patches: 16 patch features (the CLS feature dropped: "default" strategy).
    processor = LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=TEMPLATE,
    )
    processor.save_pretrained(folder)
    vision = CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    return str(folder)


def main() -> None:
    """Write the example's splits (and the tiny model with ``--model``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "vlm" / "data", help="where the split folders go")
    parser.add_argument("--train", type=int, default=96, help="training images")
    parser.add_argument("--validation", type=int, default=24, help="validation images")
    parser.add_argument("--model", type=Path, help="also build the tiny random LLaVA into this folder")
    args = parser.parse_args()
    write_split(args.out / "train", args.train, seed=1)
    write_split(args.out / "validation", args.validation, seed=2)
    print(f"wrote {args.train} + {args.validation} rows under {args.out}")
    if args.model is not None:
        print(f"tiny LLaVA written to {build_tiny_llava(args.model)}")


if __name__ == "__main__":
    main()
