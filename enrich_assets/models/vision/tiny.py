"""Tiny random-init versions of the real architectures, built from configs with no download.

Tests and the offline demo run the exact inference code of the real models on these; every
output they produce carries the model id `<name>:random-init`.
"""

from __future__ import annotations

import json
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enrich_assets.models.registry import ModelSpec, resolve_device, resolve_dtype
from enrich_assets.models.weights import RANDOM_INIT, load_transformers, transformers_revision

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, the resample the real processors use


def random_init_id(spec: ModelSpec) -> str:
    return f"{spec.name}:{RANDOM_INIT}"


@contextmanager
def _seeded(seed: int = 0) -> Iterator[None]:
    """The same random weights on every build, without touching the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def register_open_clip_config(spec: ModelSpec) -> None:
    """Make `spec.id` a known open_clip architecture (open_clip reads configs from JSON files)."""
    import open_clip

    folder = Path(tempfile.mkdtemp(prefix="open_clip_cfg-"))
    (folder / f"{spec.id}.json").write_text(json.dumps(spec.config))
    open_clip.add_model_config(folder)


def build_open_clip(spec: ModelSpec) -> Any:
    """A random-init open_clip model from the spec's JSON config, float32 on CPU."""
    import open_clip

    register_open_clip_config(spec)
    with _seeded():
        return open_clip.create_model(spec.id, pretrained=None).eval()


def build_transformers(spec: ModelSpec) -> tuple[Any, Any]:
    """(model, processor) for a transformers family, random-init, in eval mode."""
    builders = {
        "dinov2": _dinov2,
        "owlv2": _owlv2,
        "grounding_dino": _grounding_dino,
        "depth_anything": _depth_anything,
        "florence2": _florence2,
    }
    if spec.family not in builders:
        raise ValueError(f"model {spec.name!r}: no tiny builder for family {spec.family!r}")
    with _seeded():
        model, processor = builders[spec.family](spec.config["model"], spec.image_size)
    return model.eval(), processor


def clip_tokenizer(max_length: int) -> Any:
    """A byte-level CLIP BPE tokenizer without merges: every character is a token."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def bert_tokenizer() -> Any:
    """A lower-case WordPiece tokenizer over single letters."""
    from transformers import BertTokenizer

    letters = list(string.ascii_lowercase)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *letters]
    tokens += ["##" + c for c in letters]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})


def _dinov2(config: dict[str, Any], size: int) -> tuple[Any, Any]:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    processor = BitImageProcessor(
        size={"shortest_edge": size * 8 // 7},
        crop_size={"height": size, "width": size},
        resample=BICUBIC,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    return Dinov2Model(Dinov2Config(**config)), processor


def _owlv2(config: dict[str, Any], size: int) -> tuple[Any, Any]:
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    tokenizer = clip_tokenizer(config["text_config"]["max_position_embeddings"])
    text_config = {
        **config["text_config"],
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    model = Owlv2ForObjectDetection(Owlv2Config(**{**config, "text_config": text_config}))
    # random box offsets give degenerate boxes; zero offsets give the patch-grid prior boxes
    model.box_head.dense2.weight.data.zero_()
    model.box_head.dense2.bias.data.zero_()
    image_processor = Owlv2ImageProcessor(size={"height": size, "width": size})
    return model, Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)


def _grounding_dino(config: dict[str, Any], size: int) -> tuple[Any, Any]:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tokenizer = bert_tokenizer()
    text_config = {**config["text_config"], "vocab_size": len(tokenizer)}
    model = GroundingDinoForObjectDetection(
        GroundingDinoConfig(**{**config, "text_config": text_config})
    )
    image_processor = GroundingDinoImageProcessor(
        size={"shortest_edge": size, "longest_edge": size * 3 // 2}
    )
    return model, GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _depth_anything(config: dict[str, Any], size: int) -> tuple[Any, Any]:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    processor = DPTImageProcessor(
        size={"height": size, "width": size},
        keep_aspect_ratio=True,
        ensure_multiple_of=config["patch_size"],
        resample=BICUBIC,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig(**config))
    # random weights predict ~1e-7, below float16's precision; offset them to around 1
    model.head.conv3.bias.data.fill_(1.0)
    return model, processor


# Florence-2's vocabulary beyond text: the image placeholder, 1000 location bins per axis,
# and the tags its answers use; the real tokenizer adds the same tokens to BART's.
FLORENCE2_TOKENS = ["<image>", *(f"<loc_{i}>" for i in range(1000)), "<od>", "</od>"]


def florence2_tokenizer() -> Any:
    """A byte-level BPE like BART's, trained on the spot on a few words, with Florence-2's
    special tokens; `image_token` is set the way the real tokenizer's config sets it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(["a robot arm picks up the cup from the table"], trainer)
    bpe.add_special_tokens(FLORENCE2_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )


def _florence2(config: dict[str, Any], size: int) -> tuple[Any, Any]:
    from transformers import (
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    tokenizer = florence2_tokenizer()
    vision = config["vision_config"]
    stride = 1
    for s in vision["patch_stride"]:
        stride *= s
    image_processor = CLIPImageProcessor(
        size={"height": size, "width": size},
        do_center_crop=False,
        resample=BICUBIC,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
        # one token per cell of the last stage's grid, plus the pooled one
        image_seq_length=(size // stride) ** 2 + 1,
    )
    text_config = {
        **config["text_config"],
        "model_type": "bart",
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "decoder_start_token_id": tokenizer.eos_token_id,
    }
    model = Florence2ForConditionalGeneration(
        Florence2Config(
            text_config=text_config, vision_config=vision, image_token_id=tokenizer.image_token_id
        )
    )
    processor = Florence2Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        # the parsers the real processor_config.json enables
        post_processor_config={
            "pure_text": {},
            "description_with_bboxes": {},
            "phrase_grounding": {"banned_grounding_tokens": ["the image"]},
        },
    )
    return model, processor


def load_model_and_processor(
    spec: ModelSpec, model_class: str, processor_class: str, device: str | None
) -> tuple[Any, Any, str, str]:
    """A transformers model + processor on the chosen device and dtype: tiny random-init from
    its config, or real weights from the hub id / local folder. Returns (model, processor,
    revision, model_id)."""
    import transformers

    torch_device = resolve_device(device or spec.device)
    if spec.random_init:
        model, processor = build_transformers(spec)
        revision, model_id = RANDOM_INIT, random_init_id(spec)
    else:
        model = load_transformers(getattr(transformers, model_class), spec).eval()
        processor = load_transformers(getattr(transformers, processor_class), spec)
        revision, model_id = transformers_revision(spec), spec.id
    model = model.to(device=torch_device, dtype=resolve_dtype(spec.dtype, torch_device))
    return model, processor, revision, model_id
