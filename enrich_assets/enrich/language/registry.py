"""The language modules, registered once, in the order they run (the plan first: the others
read its task and subtasks). Assets, estimate and validator iterate this; nothing else
names the modules."""

from __future__ import annotations

from enrich_assets.enrich.language.interjections import INTERJECTIONS
from enrich_assets.enrich.language.module import LanguageModule
from enrich_assets.enrich.language.plan import PLAN
from enrich_assets.enrich.language.vqa import VQA

LANGUAGE_MODULES: dict[str, LanguageModule] = {m.name: m for m in (PLAN, INTERJECTIONS, VQA)}
