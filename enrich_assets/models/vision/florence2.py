"""Florence-2 through transformers' native Florence2ForConditionalGeneration: detection rows
like the other detectors', and captions as an in-process alternative to a VLM API.

Detection: `<CAPTION_TO_PHRASE_GROUNDING>` over the run's vocabulary ("cube. bowl. ...";
params.prompt = grounding, the default) or `<OD>` (open detection, params.prompt = od). The
model answers with location tokens on a 1000-bin grid per axis, which the processor turns
into pixels of the image as given. Answers that are not a vocabulary label (case and spacing
aside) are dropped, like the other detectors' labels outside the vocabulary.

Confidence: Florence-2 gives no score per box (it generates a sequence; the tokens' beam score
is not a calibrated box confidence). Every box it emits gets `confidence` = 1.0, and
`CONFIDENCE` says so in the asset's metadata: a Florence-2 confidence ranks nothing and a
threshold on it filters nothing.

Captions: `Florence2Captioner` answers ai_caption's requests with `<MORE_DETAILED_CAPTION>` on
the request's image; it speaks the VLMClient protocol (the prompt's text is not used: Florence-2
takes task tokens, not instructions).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from enrich_assets.models.registry import ModelSpec, Provenance
from enrich_assets.models.vision import tiny
from enrich_assets.models.vision.batching import BatchedModel, image_tensors, run_batched
from enrich_assets.models.vision.detector import DetectionBatch, Detector
from enrich_assets.models.vlm.types import VLMReply, VLMRequest

if TYPE_CHECKING:
    import torch

PREPROCESSING_VERSION = 1
PROMPTS = {"grounding": "<CAPTION_TO_PHRASE_GROUNDING>", "od": "<OD>"}
CAPTION_TASK = "<MORE_DETAILED_CAPTION>"
CONFIDENCE = 1.0
CONFIDENCE_NOTE = "none: Florence-2 gives no per-box score; every box has confidence 1.0"


def _generate(model: Any, inputs: dict[str, Any], params: dict[str, Any]) -> torch.Tensor:
    import torch

    with torch.inference_mode():
        return model.generate(
            **inputs,
            max_new_tokens=int(params.get("max_new_tokens", 256)),
            # > 0 only for random-init models, which would end every answer at once
            min_new_tokens=int(params.get("min_new_tokens", 0)),
            num_beams=int(params.get("num_beams", 1)),
            do_sample=False,
        )


def _inputs(processor: Any, model: Any, images: list[np.ndarray], prompts: list[str]) -> Any:
    tensors = image_tensors(images, model.device)
    inputs = processor(images=tensors, text=prompts, padding="longest", return_tensors="pt")
    return {
        k: v.to(model.device, model.dtype) if v.is_floating_point() else v.to(model.device)
        for k, v in inputs.items()
    }


class Florence2Detector(Detector):
    """`detect` / `run` as Detector's; boxes from generated location tokens, no scores."""

    families = ("florence2",)

    def __init__(self, model: Any, processor: Any, spec: ModelSpec, revision: str, model_id: str):
        super().__init__(model, processor, spec, revision, model_id)
        mode = spec.params.get("prompt", "grounding")
        if mode not in PROMPTS:
            raise ValueError(f"model {spec.name!r}: params.prompt must be one of {sorted(PROMPTS)}")
        self.task, self.params = PROMPTS[mode], spec.params
        self.confidence_note = CONFIDENCE_NOTE

    def prepare(self, images: list[np.ndarray], labels: list[str]) -> DetectionBatch:
        prompt = self.task
        if self.task == PROMPTS["grounding"]:
            prompt += ". ".join(labels) + "."
        inputs = _inputs(self.processor, self.model, images, [prompt] * len(images))
        sizes = [(int(image.shape[0]), int(image.shape[1])) for image in images]
        return DetectionBatch(inputs, sizes, labels, [])

    def infer(self, batch: DetectionBatch) -> list[list[dict[str, Any]]]:
        generated = _generate(self.model, batch.inputs, self.params)
        texts = self.processor.batch_decode(generated, skip_special_tokens=False)
        return self.parse(texts, batch.sizes, batch.labels)

    def parse(
        self, texts: list[str], sizes: list[tuple[int, int]], labels: list[str]
    ) -> list[list[dict[str, Any]]]:
        """Detections from Florence-2's answers (decoded with their special tokens) to images
        of (height, width) `sizes`: vocabulary labels only, boxes in pixels, NMS per label."""
        import torch

        index = {_key(label): i for i, label in enumerate(labels)}
        out = []
        for text, (height, width) in zip(texts, sizes, strict=True):
            answer = self.processor.post_process_generation(
                text, task=self.task, image_size=(width, height)
            )[self.task]
            found = [
                (box, index[_key(name)])
                for box, name in zip(answer["bboxes"], answer["labels"], strict=True)
                if _key(name) in index
            ]
            boxes = torch.tensor([b for b, _ in found], dtype=torch.float32).reshape(-1, 4)
            ids = torch.tensor([i for _, i in found], dtype=torch.int64)
            scores = torch.full((len(found),), CONFIDENCE)
            out.append(self._suppressed(boxes, scores, ids, labels))
        return out


def _key(label: str) -> str:
    """A label as compared with the vocabulary: lower case, single spaces, no end period."""
    return " ".join(label.lower().strip().rstrip(".").split())


class Florence2Captioner(BatchedModel):
    """ai_caption's client when the profile names a caption model: one `<MORE_DETAILED_CAPTION>`
    per request image, in full batches on the model's device."""

    concurrency = 1  # batching happens inside complete_many

    def __init__(self, model: Any, processor: Any, spec: ModelSpec, revision: str, model_id: str):
        if spec.family != "florence2":
            raise ValueError(f"model {spec.name!r}: unknown caption family {spec.family!r}")
        self._model, self.processor, self.params = model, processor, spec.params
        self.model_id = self.model = model_id  # `model`: the id, as VLMClient callers read it
        self.batch_size = spec.batch_size_for(model.device)
        preprocessing = f"hf-{type(processor.image_processor).__name__}:v{PREPROCESSING_VERSION}"
        self.provenance = Provenance(model_id, revision, preprocessing, spec.licence)

    def prepare(self, images: list[np.ndarray]) -> dict[str, Any]:
        return _inputs(self.processor, self._model, images, [CAPTION_TASK] * len(images))

    def infer(self, inputs: dict[str, Any]) -> list[tuple[str, int]]:
        generated = _generate(self._model, inputs, self.params)
        texts = self.processor.batch_decode(generated, skip_special_tokens=False)
        pad = self.processor.tokenizer.pad_token_id
        lengths = (generated != pad).sum(-1).tolist()
        return [
            (self.processor.post_process_generation(t, task=CAPTION_TASK)[CAPTION_TASK], n)
            for t, n in zip(texts, lengths, strict=True)
        ]

    def complete(self, request: VLMRequest) -> VLMReply:
        return self.complete_many([request])[0]

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        """One caption per request, in order; a request must be a caption of one image."""
        for request in requests:
            if request.kind != "caption" or len(request.images) != 1:
                raise ValueError(
                    f"{self.model_id} only captions one image per request, got kind "
                    f"{request.kind!r} with {len(request.images)} images"
                )
        start = time.monotonic()
        items: Iterable[tuple[int, np.ndarray]] = enumerate(r.images[0] for r in requests)
        results = list(
            run_batched(items, self.batch_size, self.prepare, self.infer, self.count_oom_split)
        )
        per_request = (time.monotonic() - start) / max(len(requests), 1)
        return [
            VLMReply(
                model=self.model_id,
                text=text,
                output_tokens=tokens,
                latency_s=per_request,
                meta={"task": CAPTION_TASK},
            )
            for _, (text, tokens) in results
        ]


def load_florence2_detector(spec: ModelSpec, device: str | None = None) -> Florence2Detector:
    model, processor, revision, model_id = _load(spec, device)
    return Florence2Detector(model, processor, spec, revision, model_id)


def load_captioner(spec: ModelSpec, device: str | None = None) -> Florence2Captioner:
    """Load once per run; `device` overrides the spec's (auto: cuda > mps > cpu)."""
    model, processor, revision, model_id = _load(spec, device)
    return Florence2Captioner(model, processor, spec, revision, model_id)


def _load(spec: ModelSpec, device: str | None) -> tuple[Any, Any, str, str]:
    return tiny.load_model_and_processor(
        spec, "Florence2ForConditionalGeneration", "AutoProcessor", device
    )
