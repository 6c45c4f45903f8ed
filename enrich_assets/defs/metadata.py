"""Images in materialization metadata: a PNG artifact plus an inline preview the UI renders."""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from enrich_assets.enrich.curation.plots import png_markdown
from enrich_assets.store.artifacts import write_artifact
from enrich_assets.store.images import contact_sheet


def png_metadata(artifact_dir: Path, name: str, png: bytes) -> dict[str, dg.MetadataValue]:
    path = artifact_dir / write_artifact(artifact_dir, "previews", png, ".png")
    return {
        f"{name}_path": dg.MetadataValue.path(str(path)),
        name: dg.MetadataValue.md(png_markdown(png, name)),
    }


def image_metadata(artifact_dir: Path, name: str, image: np.ndarray) -> dict[str, dg.MetadataValue]:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return png_metadata(artifact_dir, name, buffer.getvalue())


def contact_sheet_metadata(
    artifact_dir: Path, images: list[np.ndarray]
) -> dict[str, dg.MetadataValue]:
    return image_metadata(artifact_dir, "contact_sheet", contact_sheet(images))
