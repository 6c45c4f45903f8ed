"""Text-prompted object detection through transformers: OWLv2 (default) or Grounding DINO;
Florence-2 (models/vision/florence2.py) subclasses this Detector.

`detect(images, labels)` gives, per image, raw detections {label, confidence, bbox} with bbox
[x_min, y_min, x_max, y_max] in the image's pixels, after per-label non-maximum suppression.
Boxes may still reach outside the image; enrich.detections normalises them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from enrich_assets.models.registry import ModelSpec, Provenance
from enrich_assets.models.vision import tiny
from enrich_assets.models.vision.batching import BatchStats, K, image_tensors, run_batched

if TYPE_CHECKING:
    import torch

PREPROCESSING_VERSION = 1
FAMILIES = ("owlv2", "grounding_dino")


@dataclass
class DetectionBatch:
    inputs: dict[str, Any]  # processor output on the model's device
    sizes: list[tuple[int, int]]  # (height, width) of each original image
    labels: list[str]
    spans: list[list[int]]  # Grounding DINO: token positions of each label


class Detector(BatchStats):
    """Like BatchedModel, except that `prepare` also takes the labels to look for."""

    families = FAMILIES

    def __init__(self, model: Any, processor: Any, spec: ModelSpec, revision: str, model_id: str):
        if spec.family not in self.families:
            raise ValueError(f"model {spec.name!r}: unknown detection family {spec.family!r}")
        self.model, self.processor, self.family = model, processor, spec.family
        self.device, self.dtype = model.device, model.dtype
        self.batch_size = spec.batch_size_for(self.device)
        self.threshold = float(spec.params.get("threshold", 0.1))
        self.nms_iou = float(spec.params.get("nms_iou", 0.5))
        self.max_detections = int(spec.params.get("max_detections", 50))
        preprocessing = f"hf-{type(processor.image_processor).__name__}:v{PREPROCESSING_VERSION}"
        self.provenance = Provenance(model_id, revision, preprocessing, spec.licence)
        self.confidence_note = "model score"  # what `confidence` means, for the metadata

    @property
    def model_id(self) -> str:
        return self.provenance.model_id

    def detect(self, images: list[np.ndarray], labels: list[str]) -> list[list[dict[str, Any]]]:
        return [found for _, found in self.run(enumerate(images), labels)]

    def run(
        self, items: Iterable[tuple[K, np.ndarray]], labels: list[str]
    ) -> Iterator[tuple[K, list[dict[str, Any]]]]:
        """(key, detections) for (key, image) pairs from any number of episodes."""
        if not labels:
            raise ValueError("detection needs at least one label")
        prepare = partial(self.prepare, labels=labels)
        return run_batched(
            items, self.batch_size, prepare, self.infer, self.count_oom_split, self.record_batch
        )

    def prepare(self, images: list[np.ndarray], labels: list[str]) -> DetectionBatch:
        tensors = image_tensors(images, self.device)
        inputs = self.processor(
            images=tensors, text=[labels] * len(tensors), return_tensors="pt", device=self.device
        )
        inputs = {
            k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
        }
        sizes = [(int(t.shape[1]), int(t.shape[2])) for t in tensors]
        spans = self._label_spans(labels, inputs["input_ids"]) if self.family != "owlv2" else []
        return DetectionBatch(inputs, sizes, labels, spans)

    def infer(self, batch: DetectionBatch) -> list[list[dict[str, Any]]]:
        import torch

        with torch.inference_mode():
            outputs = self.model(**batch.inputs)
            if self.family == "owlv2":
                found = self.processor.post_process_grounded_object_detection(
                    # OWLv2 pads each image to a square: boxes are relative to that square
                    outputs,
                    threshold=self.threshold,
                    target_sizes=[(max(h, w), max(h, w)) for h, w in batch.sizes],
                )
                per_image = [(r["boxes"], r["scores"], r["labels"]) for r in found]
            else:
                per_image = self._grounding_dino_boxes(outputs, batch)
            return [self._suppressed(*found, batch.labels) for found in per_image]

    def _label_spans(self, labels: list[str], input_ids: torch.Tensor) -> list[list[int]]:
        """Token positions of each label in Grounding DINO's prompt "[CLS] a . b . [SEP]"."""
        tokenizer = self.processor.tokenizer
        period = tokenizer.convert_tokens_to_ids(".")
        spans, position = [], 1
        for label in labels:
            width = len(tokenizer(label, add_special_tokens=False)["input_ids"])
            spans.append(list(range(position, position + width)))
            position += width + 1
            if position - 1 >= input_ids.shape[1] or int(input_ids[0, position - 1]) != period:
                raise ValueError(f"{self.model_id}: cannot locate label {label!r} in the prompt")
        return spans

    def _grounding_dino_boxes(
        self, outputs: Any, batch: DetectionBatch
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Score of a query for a label = its highest token probability within that label."""
        import torch
        from transformers.image_transforms import center_to_corners_format

        probs = outputs.logits.float().sigmoid()
        label_scores = torch.stack([probs[:, :, span].amax(-1) for span in batch.spans], dim=-1)
        scores, labels = label_scores.max(-1)
        boxes = center_to_corners_format(outputs.pred_boxes.float())
        per_image = []
        for i, (height, width) in enumerate(batch.sizes):
            keep = scores[i] > self.threshold
            scale = torch.tensor([width, height, width, height], device=boxes.device)
            per_image.append((boxes[i][keep] * scale, scores[i][keep], labels[i][keep]))
        return per_image

    def _suppressed(
        self, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, names: list[str]
    ) -> list[dict[str, Any]]:
        from torchvision.ops import batched_nms

        boxes, scores = boxes.float(), scores.float()
        keep = batched_nms(boxes, scores, labels, self.nms_iou)[: self.max_detections]
        return [
            {
                "label": names[int(labels[k])],
                "confidence": float(scores[k]),
                "bbox": [float(v) for v in boxes[k].tolist()],
            }
            for k in keep.tolist()
        ]


def load_detector(spec: ModelSpec, device: str | None = None) -> Detector:
    """Load once per run; `device` overrides the spec's (auto: cuda > mps > cpu)."""
    model, processor, revision, model_id = tiny.load_model_and_processor(
        spec, "AutoModelForZeroShotObjectDetection", "AutoProcessor", device
    )
    return Detector(model, processor, spec, revision, model_id)
