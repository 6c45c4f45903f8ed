"""A numpy-only renderer of a tabletop scene: a table, coloured objects, a two-finger gripper.

World coordinates: ``u`` runs left to right across the table, ``v`` from its back edge
(far from the robot) to its front edge, both in [0, 1]; ``z`` is height above the table in
the same units. Two kinds of camera look at it: ``front`` (oblique, from the robot's side,
with perspective shrink towards the back) and ``top`` (straight down). Every drawing call
returns the pixel box of what it drew, so the ground truth is exactly what is on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]  # x_min, y_min, x_max, y_max in pixels, inclusive

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35),
    "green": (40, 165, 60),
    "blue": (35, 70, 205),
    "yellow": (235, 205, 35),
    "orange": (240, 130, 25),
    "purple": (135, 55, 175),
    "cyan": (35, 195, 205),
    "white": (240, 240, 240),
}
SHAPES = ("cube", "cylinder")
ARM_RGB = (95, 95, 105)
PALM_RGB = (60, 60, 68)
FINGER_RGB = (35, 35, 40)
FINGER_REACH = 0.09  # half the finger spacing when fully open, table units


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    size: float  # footprint width, table units
    height: float

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class View:
    """One camera. ``shift`` moves the table sideways (fraction of width), ``zoom`` scales
    it, ``horizon`` (front only) is where the table's back edge sits (fraction of height)."""

    kind: str  # "front" | "top"
    shift: float = 0.0
    zoom: float = 1.0
    horizon: float = 0.36


@dataclass(frozen=True)
class Lighting:
    gain: float = 1.0  # overall brightness
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    slope: float = 0.0  # left-to-right brightness gradient, fraction per image width


@dataclass(frozen=True)
class Placed:
    """An object at a position; ``z`` above 0 while it is carried."""

    obj: SceneObject
    u: float
    v: float
    z: float = 0.0


@dataclass(frozen=True)
class Gripper:
    u: float
    v: float
    z: float  # fingertip height
    opening: float  # 1 open, 0 closed


def project(view: View, width: int, height: int, u: float, v: float, z: float):
    """Pixel (x, y) of a world point and the pixels per table unit there."""
    if view.kind == "front":
        ppu = width * 0.9 * view.zoom * (0.55 + 0.45 * v)
        back_y, front_y = view.horizon * height, 1.02 * height
        x = width * (0.5 + view.shift) + (u - 0.5) * ppu
        y = back_y + (front_y - back_y) * v - 0.8 * z * ppu
        return x, y, ppu
    ppu = height * 0.85 * view.zoom * (1.0 + 0.6 * z)
    x = width * (0.5 + view.shift) + (u - 0.5) * ppu
    y = height * 0.5 + (v - 0.5) * ppu
    return x, y, ppu


def render_background(view: View, width: int, height: int, table_rgb, wall_rgb) -> np.ndarray:
    """The static part of a frame (wall or floor, and the table with its planks), float32."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 0.8 + 0.2 * ys / height
    image = np.asarray(wall_rgb, np.float32) * shade[..., None]
    _, back_y, _ = project(view, width, height, 0.5, 0.0, 0.0)
    _, front_y, _ = project(view, width, height, 0.5, 1.0, 0.0)
    v = (ys - back_y) / (front_y - back_y)  # both views map v to rows linearly on the table
    left, _, _ = project(view, width, height, 0.0, v, 0.0)
    right, _, _ = project(view, width, height, 1.0, v, 0.0)
    on_table = (v >= 0) & (v <= 1) & (xs >= left) & (xs <= right)
    u = (xs - left) / np.maximum(right - left, 1e-6)
    planks = 0.9 + 0.1 * (np.floor(u * 7) % 2) + 0.04 * np.sin(u * 90.0)
    table = np.asarray(table_rgb, np.float32) * planks[..., None]
    image[on_table] = table[on_table]
    return image


def draw_object(image: np.ndarray, view: View, placed: Placed) -> Box | None:
    """Draw an object (shadow on the table, then the body) and return its box."""
    height, width = image.shape[:2]
    obj, rgb = placed.obj, np.asarray(COLOURS[placed.obj.colour], np.float32)
    x, y, ppu = project(view, width, height, placed.u, placed.v, placed.z)
    half = obj.size * ppu / 2
    sx, sy, _ = project(view, width, height, placed.u, placed.v, 0.0)
    if view.kind == "top":
        _fill_ellipse(image, sx + 0.15 * half, sy + 0.15 * half, half, half, (0.6, 0.6, 0.6), True)
        if obj.shape == "cube":
            box = _fill_rect(image, x - half, y - half, x + half, y + half, rgb * 0.8)
            _fill_rect(image, x - 0.8 * half, y - 0.8 * half, x + 0.8 * half, y + 0.8 * half, rgb)
            return box
        box = _fill_ellipse(image, x, y, half, half, rgb * 0.8)
        _fill_ellipse(image, x, y, 0.8 * half, 0.8 * half, rgb)
        return box
    _fill_ellipse(image, sx, sy, 1.2 * half, 0.35 * half, (0.6, 0.6, 0.6), True)
    top = y - 0.8 * obj.height * ppu
    cap = 0.35 * half  # the visible top face, seen from above at an angle
    if obj.shape == "cube":
        body = _fill_rect(image, x - half, top, x + half, y, rgb * 0.8)
        lid = _fill_rect(image, x - half, top - cap, x + half, top, rgb)
        return _union(body, lid)
    bottom = _fill_ellipse(image, x, y, half, cap, rgb * 0.7)
    body = _fill_rect(image, x - half, top, x + half, y, rgb * 0.8)
    lid = _fill_ellipse(image, x, top, half, cap, rgb)
    return _union(_union(bottom, body), lid)


def draw_gripper(image: np.ndarray, view: View, gripper: Gripper) -> Box | None:
    """Draw the arm, palm and two fingers; the box covers palm and fingers (not the arm)."""
    height, width = image.shape[:2]
    x, y, ppu = project(view, width, height, gripper.u, gripper.v, gripper.z)
    spread = (0.3 + 0.7 * gripper.opening) * FINGER_REACH * ppu
    finger_w = 0.025 * ppu
    if view.kind == "front":
        finger_len, palm_h = 0.11 * ppu, 0.04 * ppu
        palm_y = y - finger_len
        _fill_rect(image, x - 0.025 * ppu, 0, x + 0.025 * ppu, palm_y - palm_h, ARM_RGB)
        reach = FINGER_REACH * ppu + finger_w
        palm = _fill_rect(image, x - reach, palm_y - palm_h, x + reach, palm_y, PALM_RGB)
        left = _fill_rect(image, x - spread - finger_w, palm_y, x - spread, y, FINGER_RGB)
        right = _fill_rect(image, x + spread, palm_y, x + spread + finger_w, y, FINGER_RGB)
        return _union(_union(palm, left), right)
    _fill_rect(image, x - 0.02 * ppu, y, x + 0.02 * ppu, height, ARM_RGB)
    palm = _fill_ellipse(image, x, y, 0.055 * ppu, 0.055 * ppu, PALM_RGB)
    half_len = 0.045 * ppu
    left = _fill_rect(
        image, x - spread - finger_w, y - half_len, x - spread, y + half_len, FINGER_RGB
    )
    right = _fill_rect(
        image, x + spread, y - half_len, x + spread + finger_w, y + half_len, FINGER_RGB
    )
    return _union(_union(palm, left), right)


def render_frame(
    background: np.ndarray, view: View, objects: list[Placed], gripper: Gripper
) -> tuple[np.ndarray, dict[str, Box | None], Box | None]:
    """One clean frame (float32, before lighting) with object boxes by name and the gripper box."""
    image = background.copy()
    boxes: dict[str, Box | None] = {}
    # painter's order: objects on the table far to near, a carried object last (it is higher)
    for placed in sorted(objects, key=lambda p: (p.z > 0, p.v)):
        boxes[placed.obj.name] = draw_object(image, view, placed)
    return image, boxes, draw_gripper(image, view, gripper)


def expose(image: np.ndarray, lighting: Lighting, noise: np.ndarray) -> np.ndarray:
    """Apply lighting and additive sensor noise; returns uint8."""
    width = image.shape[1]
    ramp = 1.0 + lighting.slope * (np.arange(width, dtype=np.float32) / width - 0.5)
    gain = lighting.gain * np.asarray(lighting.tint, np.float32)
    lit = image * ramp[None, :, None] * gain + noise
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)


def _clip_box(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> Box | None:
    height, width = image.shape[:2]
    box = (
        max(round(x0), 0),
        max(round(y0), 0),
        min(round(x1), width - 1),
        min(round(y1), height - 1),
    )
    return box if box[0] <= box[2] and box[1] <= box[3] else None


def _fill_rect(image: np.ndarray, x0: float, y0: float, x1: float, y1: float, rgb) -> Box | None:
    box = _clip_box(image, x0, y0, x1, y1)
    if box is not None:
        image[box[1] : box[3] + 1, box[0] : box[2] + 1] = rgb
    return box


def _fill_ellipse(
    image: np.ndarray, cx: float, cy: float, rx: float, ry: float, rgb, multiply: bool = False
) -> Box | None:
    """Fill (or, with ``multiply``, darken by ``rgb`` factors) an axis-aligned ellipse."""
    box = _clip_box(image, cx - rx, cy - ry, cx + rx, cy + ry)
    if box is None:
        return None
    ys, xs = np.mgrid[box[1] : box[3] + 1, box[0] : box[2] + 1]
    inside = ((xs - cx) / max(rx, 0.5)) ** 2 + ((ys - cy) / max(ry, 0.5)) ** 2 <= 1.0
    region = image[box[1] : box[3] + 1, box[0] : box[2] + 1]
    region[inside] = region[inside] * rgb if multiply else rgb
    return box


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
