"""ai_caption: one caption per keyframe, near-duplicates reuse their original's; and
ai_caption_tags: object and action words found in a caption with a fixed lexicon."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from enrich_assets.enrich.language.frames import FrameFetch
from enrich_assets.enrich.language.request import prompt_request
from enrich_assets.enrich.language.settings import SAMPLING_KEYS, LanguageSettings
from enrich_assets.models.vlm.types import VLMClient, VLMReply

KeyframeKey = tuple[str, int]  # (camera, frame_index)

# What shapes a caption, so ai_caption's code_version. Captions are per keyframe rows, not
# staged lerobot rows, so they are not a LanguageModule.
CAPTION_PROMPTS = ("caption",)
CAPTION_SETTINGS = SAMPLING_KEYS


@dataclass(frozen=True)
class Caption:
    camera: str
    frame_index: int
    text: str | None  # None when the call failed (`error` says why)
    model: str
    reused_from: KeyframeKey | None = None  # set on a near-duplicate: whose caption it took
    error: str | None = None


def caption_request(image: np.ndarray, task: str, key: KeyframeKey, settings: LanguageSettings):
    camera, frame_index = key
    return prompt_request(
        "caption",
        [image],
        settings,
        json_output=False,
        task=task or "(none)",
        camera=camera,
        frame=frame_index,
    )


def resolve_originals(
    keys: Sequence[KeyframeKey], dup_of: Mapping[KeyframeKey, KeyframeKey]
) -> dict[KeyframeKey, KeyframeKey]:
    """Each keyframe's original (itself unless flagged), following chains a -> b -> c."""
    known = set(keys)
    out: dict[KeyframeKey, KeyframeKey] = {}
    for key in keys:
        seen = [key]
        while seen[-1] in dup_of:
            nxt = dup_of[seen[-1]]
            if nxt in seen:
                raise ValueError(f"near-duplicate mapping has a cycle through {key}")
            seen.append(nxt)
        if seen[-1] not in known:
            raise ValueError(f"keyframe {key} is a near-duplicate of {seen[-1]}, not a keyframe")
        out[key] = seen[-1]
    return out


def caption_keyframes(
    keys: Sequence[KeyframeKey],
    fetch: FrameFetch,
    task: str,
    client: VLMClient,
    settings: LanguageSettings,
    dup_of: Mapping[KeyframeKey, KeyframeKey] | None = None,
) -> list[Caption]:
    """Captions for `keys`, in order; only originals are decoded and sent to the model."""
    originals = resolve_originals(keys, dup_of or {})
    to_call = [k for k in keys if originals[k] == k]
    images = {k: fetch(k[0], [k[1]])[0] for k in to_call}
    replies = client.complete_many([caption_request(images[k], task, k, settings) for k in to_call])
    by_key = dict(zip(to_call, replies, strict=True))
    return [_caption(k, by_key[originals[k]], originals[k]) for k in keys]


def _caption(key: KeyframeKey, reply: VLMReply, original: KeyframeKey) -> Caption:
    text = None if reply.error else reply.text.strip() or None
    error = reply.error or (None if text else "empty caption")
    reused = None if original == key else original
    return Caption(key[0], key[1], text, reply.model, reused, error)


# --- tags ---------------------------------------------------------------------------

OBJECTS = frozenset(
    """apple bag ball banana basket bin block board book bottle bowl box bread brush bucket
    button cabinet cap carrot cloth container cube cup cutting_board dish door drawer egg
    fork fridge fruit glass handle hanger jar kettle key keyboard knife knob laptop lego lid
    marker microwave mouse mug napkin orange oven pan paper pen pencil phone plate plug pot
    rack rag scissors screwdriver shelf shirt sink socket sponge spoon stapler stove switch
    table tape tissue towel toy tray vase""".split()
)

_ACTION_FORMS = """
approach approaches approached approaching | carry carries carried carrying
close closes closed closing | drop drops dropped dropping | fold folds folded folding
grasp grasps grasped grasping | grip grips gripped gripping | hang hangs hung hanging
hold holds held holding | insert inserts inserted inserting | lift lifts lifted lifting
lower lowers lowered lowering | move moves moved moving | open opens opened opening
pick picks picked picking | place places placed placing | pour pours poured pouring
press presses pressed pressing | pull pulls pulled pulling | push pushes pushed pushing
put puts putting | reach reaches reached reaching | release releases released releasing
rotate rotates rotated rotating | slide slides slid sliding | stack stacks stacked stacking
transfer transfers transferred transferring | turn turns turned turning
wipe wipes wiped wiping
"""
ACTION_LEMMAS = {  # every form -> its lemma (the first form of its group)
    form: group.split()[0]
    for group in re.split(r"[|\n]", _ACTION_FORMS)
    if group.strip()
    for form in group.split()
}


def _object_of(word: str) -> str | None:
    for candidate in (word, word.removesuffix("s"), word.removesuffix("es")):
        if candidate in OBJECTS:
            return candidate
    return None


@dataclass(frozen=True)
class CaptionTags:
    objects: tuple[str, ...]
    actions: tuple[str, ...]


def caption_tags(caption: str) -> CaptionTags:
    """Objects (singular) and actions (lemmas) named in a caption, in order of first mention."""
    words = re.findall(r"[a-z]+", caption.lower())
    objects: dict[str, None] = {}  # an ordered set
    actions: dict[str, None] = {}
    i = 0
    while i < len(words):
        pair = _object_of(f"{words[i]}_{words[i + 1]}") if i + 1 < len(words) else None
        if pair is not None:  # a two-word object ("cutting board") wins over its last word
            objects[pair] = None
            i += 2
            continue
        if (obj := _object_of(words[i])) is not None:
            objects[obj] = None
        if words[i] in ACTION_LEMMAS:
            actions[ACTION_LEMMAS[words[i]]] = None
        i += 1
    return CaptionTags(tuple(objects), tuple(actions))
