"""What a language module returns."""

from __future__ import annotations

from dataclasses import dataclass

from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.enrich.rules import RuleOutcome
from enrich_assets.models.vlm.types import VLMReply


@dataclass
class ModuleOutput:
    """What a language module returns: its rows, its own rule outcomes, the replies it used
    (for model ids, token counts and the call ledger)."""

    rows: list[LanguageRow]
    outcomes: list[RuleOutcome]
    replies: list[VLMReply]
