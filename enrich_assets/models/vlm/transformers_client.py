"""VLM backend running a transformers image-text-to-text model in-process (GPU, no server).

Any model that `AutoModelForImageTextToText` and `AutoProcessor` load with a chat template
(Qwen2-VL / Qwen2.5-VL, SmolVLM, ...). Same parsing, repair, cache and budget as the HTTP
backend. `tiny_random_qwen2_vl()` builds the same architecture tiny and untrained, offline.
"""

from __future__ import annotations

from typing import Any

from enrich_assets.models.vlm.call import (
    Generation,
    Message,
    RepairingClient,
)
from enrich_assets.models.vlm.types import VLMRequest

RANDOM_INIT_SUFFIX = ":random-init"


class TransformersVLMClient(RepairingClient):
    def __init__(
        self,
        model: Any,
        processor: Any,
        model_id: str,
        *,
        min_new_tokens: int = 0,
        **options: Any,
    ) -> None:
        """`min_new_tokens` > 0 only for untrained models, which emit EOS at once;
        `options`: RepairingClient's (max_repairs, temperature, max_tokens, cache, budget)."""
        # one at a time: a single in-process model gains nothing from threads
        super().__init__(model_id, concurrency=1, **options)
        self._model = model.eval()
        self._processor = processor
        self.min_new_tokens = min_new_tokens

    @classmethod
    def from_pretrained(
        cls, model_id: str, *, device: str = "cpu", dtype: str = "auto", **kwargs: Any
    ) -> TransformersVLMClient:
        """Weights from the local HF cache or a local folder; a clear error when absent."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(model_id)
            model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=dtype)
        except OSError as e:
            raise RuntimeError(
                f"cannot load VLM {model_id!r}: weights are neither a local folder nor in the "
                f"Hugging Face cache, and this machine cannot download them. Fetch them where "
                f"there is network (`hf download {model_id}`) and copy the cache over, or set "
                f"the model to a local folder. ({e})"
            ) from e
        return cls(model.to(device), processor, model_id, **kwargs)

    def __repr__(self) -> str:
        return f"TransformersVLMClient(model={self.model!r})"

    def _generate(self, request: VLMRequest, messages: list[Message]) -> Generation:
        import torch
        from PIL import Image

        images = [
            Image.fromarray(p["image"]) for m in messages for p in m["content"] if "image" in p
        ]
        # The processor takes the images separately; the chat keeps a placeholder for each.
        chat = [
            {"role": m["role"], "content": [_placeholder(p) for p in m["content"]]}
            for m in messages
        ]
        prompt = self._processor.apply_chat_template(chat, add_generation_prompt=True)
        inputs = self._processor(text=[prompt], images=images or None, return_tensors="pt")
        inputs = inputs.to(self._model.device)
        sampling = (
            {"do_sample": True, "temperature": request.temperature}
            if request.temperature > 0
            else {"do_sample": False}
        )
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=request.max_tokens,
                min_new_tokens=min(self.min_new_tokens, request.max_tokens),
                **sampling,
            )
        new = out[0, inputs["input_ids"].shape[1] :].tolist()
        eos = _eos_ids(self._model)
        stop = next((i for i, t in enumerate(new) if t in eos), None)
        return Generation(
            text=self._processor.decode(new[:stop], skip_special_tokens=True),
            input_tokens=int(inputs["input_ids"].shape[1]),
            output_tokens=len(new) if stop is None else stop + 1,
            finish_reason="length" if stop is None else "stop",
            served_model=self.model,
        )


def _placeholder(part: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image"} if part["type"] == "image" else part


def _eos_ids(model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos}


# The Qwen2-VL chat format, reduced to what the tiny tokenizer knows.
_QWEN2_VL_CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN2_VL_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def tiny_random_qwen2_vl(seed: int = 0, **client_kwargs: Any) -> TransformersVLMClient:
    """A ~0.1M-parameter untrained Qwen2-VL with a byte-level BPE trained on the spot
    (long: the whole tiny config and tokenizer spelled out in one place, read top to bottom).

    Same classes and code path as a real Qwen2-VL; its text is noise, and its model id says
    `:random-init`. `min_new_tokens` defaults to 8 so it says something.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=_QWEN2_VL_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(['a robot arm picks up the cup {"task": "place it"}'], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in _QWEN2_VL_SPECIALS}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=112 * 112),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=_QWEN2_VL_CHAT,
    )
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    client_kwargs.setdefault("min_new_tokens", 8)
    return TransformersVLMClient(
        model, processor, "Qwen2-VL-tiny" + RANDOM_INIT_SUFFIX, **client_kwargs
    )
