#!/usr/bin/env bash
# `make compat`: lerobot 0.6.1's own code over what this project writes for the real G1
# fixture. lerobot needs Python >= 3.12 and pins torch < 2.12, so it gets its own venv
# ($LEROBOT_VENV, reused when it already holds lerobot 0.6.1). The pipeline runs in a
# throwaway copy with its own data dir and Dagster home; then lerobot's StagingValidator
# must report no error and LeRobotDataset(video_backend="pyav") must load the result
# (enrich_assets_tests/compat/check_lerobot.py).
set -euo pipefail
cd "$(dirname "$0")/.."
LEROBOT_VERSION=0.6.1
LV=${LEROBOT_VENV:-$HOME/.cache/enrich-assets/lerobot-$LEROBOT_VERSION}
REAL=${ENRICH_REAL_DATA:-$PWD/../shared/data/real}
EA=$PWD/.venv/bin/enrich-assets

python312() {  # python3.12 on PATH, else pyenv's newest 3.12
  if command -v python3.12 >/dev/null && python3.12 -c "" 2>/dev/null; then
    command -v python3.12
    return
  fi
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  ls -d "$root"/versions/3.12*/bin/python3.12 2>/dev/null | sort -V | tail -1
}

if ! "$LV/bin/python" -c "import importlib.metadata as m; assert m.version('lerobot') == '$LEROBOT_VERSION'" 2>/dev/null; then
  py=$(python312)
  [ -n "$py" ] || { echo "compat: no Python 3.12 (python3.12 on PATH or pyenv)"; exit 1; }
  echo "compat: installing lerobot[dataset]==$LEROBOT_VERSION into $LV (downloads torch; minutes)"
  rm -rf "$LV" && mkdir -p "$(dirname "$LV")"
  "$py" -m venv "$LV"
  "$LV/bin/pip" install -q "lerobot[dataset]==$LEROBOT_VERSION"
fi
[ -d "$REAL/g1_v30" ] || { echo "compat: real fixture missing at $REAL/g1_v30"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$REAL/g1_v30" "$work/g1" && chmod -R u+w "$work/g1"
echo "compat: enrich-assets materialize on a copy of $REAL/g1_v30"
if ! (cd "$work" && ENRICH_DATA_DIR=$work/data DAGSTER_HOME=$work/dh \
  "$EA" materialize --dataset "$work/g1" >"$work/materialize.log" 2>&1); then
  tail -40 "$work/materialize.log"
  echo "compat: materialize failed"
  exit 1
fi
HF_HUB_OFFLINE=1 HF_DATASETS_CACHE=$work/hf HF_LEROBOT_HOME=$work/lerobot_home \
  "$LV/bin/python" enrich_assets_tests/compat/check_lerobot.py "$work/g1"
