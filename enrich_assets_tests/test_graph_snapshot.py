"""The asset graph as a snapshot: keys, deps, partitions, groups, checks, code versions.

A refactor must not change the graph by accident. When a change is meant, regenerate with
`ENRICH_UPDATE_SNAPSHOT=1 make test` and review the diff of `snapshots/asset_graph.json`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def graph_snapshot() -> dict:
    from enrich_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": getattr(node.partitions_def, "name", None)
            if node.partitions_def
            else None,
            "group": node.group_name,
            "code_version": node.code_version,
            "checks": sorted(c.name for c in node.check_keys),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.jobs or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
    }


def test_asset_graph_matches_snapshot() -> None:
    current = graph_snapshot()
    if os.environ.get("ENRICH_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())
