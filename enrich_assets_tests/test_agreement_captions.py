"""Caption agreement: seeded sample, a second model over real HTTP, real similarity figures."""

import base64
import io

import numpy as np
import polars as pl
import pytest
from PIL import Image

from enrich_assets.enrich.curation.caption_agreement import (
    AgreementSettings,
    caption_agreement,
    check_caption_agreement,
    compare_captions,
    sample_keyframes,
    second_captions,
)
from enrich_assets.enrich.language.captions import caption_request
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.enrich.rules import Severity
from enrich_assets.infra.schema import pipeline_config
from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.sentence_embedder import load_sentence_embedder
from enrich_assets.models.vlm.factory import build_client
from enrich_assets.models.vlm.stub_server import LocalStubServer
from enrich_assets.store.images import save_keyframes

SETTINGS = LanguageSettings()
CAM = "observation.images.top"
CUBE = "A robot arm picks up a red cube from the table."
TOWEL = "Two hands fold a blue towel on the table."
COFFEE = "A person pours coffee into a mug in a kitchen."
PAIRS = [  # (primary, secondary)
    (CUBE, "A robotic arm lifts a red cube off the table."),
    ("The gripper places the cup in the sink.", "The robot's gripper puts the cup into the sink."),
    (TOWEL, "A blue towel is being folded on the table by two hands."),
    (CUBE, COFFEE),
    (TOWEL, "The robot opens the top drawer of the cabinet."),
]


@pytest.fixture(scope="module")
def embedder():
    return load_sentence_embedder(load_model_spec("sentence"))


def caption_rows(texts, models="primary", reused=None, episode_of=lambda i: i // 4):
    n = len(texts)
    return pl.DataFrame(
        {
            "dataset_id": ["ds"] * n,
            "episode_index": [episode_of(i) for i in range(n)],
            "camera": [CAM] * n,
            "frame_index": [10 * (i % 4) for i in range(n)],
            "ai_caption": texts,
            "ai_caption_reused_from": reused or [None] * n,
            "ai_caption_error": [None if t else "empty caption" for t in texts],
            "ai_model_id": [models] * n,
        },
        schema_overrides={"ai_caption_reused_from": pl.Int64, "ai_caption_error": pl.String},
    )


def test_sample_is_seeded_and_skips_copied_and_missing_captions():
    texts = [f"caption {i}" for i in range(40)]
    texts[3] = None
    reused = [0 if i == 5 else None for i in range(40)]
    captions = caption_rows(texts, reused=reused)
    a = sample_keyframes(captions, 10, seed=1)
    assert a.height == 10 and a.equals(sample_keyframes(captions.reverse(), 10, seed=1))
    assert not a.equals(sample_keyframes(captions, 10, seed=2))
    everything = sample_keyframes(captions, 100, seed=1)["ai_caption"].to_list()
    assert len(everything) == 38 and "caption 3" not in everything
    assert "caption 5" not in everything


def test_figures_on_a_handful_of_pairs(embedder):
    primary = caption_rows([p for p, _ in PAIRS] + ["A caption the second model failed on."])
    secondary = caption_rows([s for _, s in PAIRS] + [None], models="second")
    report = compare_captions(primary, secondary, embedder, threshold=0.7)
    expected = np.array(
        [float(np.dot(*embedder.encode([p, s]))) for p, s in PAIRS]
    )  # 0.85, 0.83, 0.93, 0.10, 0.23
    assert (report.sampled, report.n) == (6, 5)
    assert report.mean == pytest.approx(expected.mean(), abs=1e-5)
    assert report.median == pytest.approx(np.median(expected), abs=1e-5)
    assert report.p10 == pytest.approx(np.percentile(expected, 10), abs=1e-5)
    assert report.flagged_share == 0.4
    assert [(p.episode_index, p.frame_index) for p in report.flagged] == [(0, 30), (1, 0)]
    assert [p.secondary for p in report.flagged] == [PAIRS[3][1], PAIRS[4][1]]
    assert report.flagged[0].similarity < report.flagged[1].similarity < 0.7
    assert (report.primary_model, report.secondary_model) == ("primary", "second")
    assert report.sentence_model == "sentence-transformers/all-MiniLM-L6-v2"

    warn = check_caption_agreement(report, max_flagged_share=0.2)
    assert (warn.rule, warn.severity, warn.passed) == ("caption_agreement", Severity.WARN, False)
    assert warn.message.startswith(
        f"2/5 caption pairs below 0.70 (40%, limit 20%); similarity mean {expected.mean():.2f}, "
        f"median {np.median(expected):.2f}, p10 {np.percentile(expected, 10):.2f}; "
        "1 of 6 sampled without both captions; primary vs second"
    )
    assert f"lowest: ds:0 {CAM} frame 30 {expected[3]:.2f}; ds:1 {CAM} frame 0" in warn.message
    assert check_caption_agreement(report, max_flagged_share=0.4).passed


def test_no_pairs_is_a_warning_not_a_crash(embedder):
    report = compare_captions(caption_rows([CUBE]), caption_rows([None]), embedder, 0.7)
    assert (report.n, report.mean, report.flagged_share) == (0, None, None)
    outcome = check_caption_agreement(report, 0.2)
    assert not outcome.passed and outcome.message.startswith("no caption pairs to compare")


def keyframe_tables(tmp_path, n_episodes=3, frames=(0, 10)):
    rng = np.random.default_rng(0)
    rows, images = [], {}
    for episode in range(n_episodes):
        for frame in frames:
            image = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
            (path,) = save_keyframes(tmp_path, [image])
            images[episode, frame] = image
            rows.append(("ds", episode, CAM, frame, str(path)))
    keyframes = pl.DataFrame(
        rows,
        schema=["dataset_id", "episode_index", "camera", "frame_index", "tech_image_path"],
        orient="row",
    )
    tasks = ["pick up the red cube", "fold the blue towel", "put the cup in the sink"]
    manifest = pl.DataFrame(  # one row per camera, as the manifest has
        {
            "dataset_id": ["ds"] * 2 * n_episodes,
            "episode_index": [e for e in range(n_episodes) for _ in range(2)],
            "camera": [CAM, "wrist"] * n_episodes,
            "tech_task": [tasks[e % 3] for e in range(n_episodes) for _ in range(2)],
        }
    )
    return keyframes, manifest, images


def sent_image(body) -> np.ndarray:
    parts = body["messages"][-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_second_captions_come_from_the_caption_prompt_over_http(tmp_path):
    keyframes, manifest, images = keyframe_tables(tmp_path)
    sample = caption_rows(["x"] * 3, episode_of=lambda i: i)  # frames 0, 10, 20
    sample = sample.filter(pl.col("frame_index") < 20)  # episodes 0 and 1
    with LocalStubServer() as stub:
        client = build_client(
            {"backend": "openai", "model": "second-vlm", "base_url": stub.base_url}
        )
        second = second_captions(sample, keyframes, manifest, tmp_path, client, SETTINGS)
        bodies = list(stub.recent)
    assert second["ai_model_id"].to_list() == ["second-vlm:local-stub"] * 2
    assert second.select("episode_index", "frame_index").rows() == [(0, 0), (1, 10)]
    assert "red cube" in second["ai_caption"][0] and "blue towel" in second["ai_caption"][1]
    assert second["ai_caption_error"].to_list() == [None, None]
    assert stub.kinds == {"caption": 2}
    by_task = {"cube" in str(b["messages"]): b for b in bodies}
    expected = caption_request(images[0, 0], "pick up the red cube", (CAM, 0), SETTINGS)
    user = [p["text"] for p in by_task[True]["messages"][-1]["content"] if p["type"] == "text"]
    assert "\n".join(user) == expected.prompt
    np.testing.assert_array_equal(sent_image(by_task[True]), images[0, 0])
    np.testing.assert_array_equal(sent_image(by_task[False]), images[1, 10])


def test_a_keyframe_without_an_image_row_is_named(tmp_path):
    keyframes, manifest, _ = keyframe_tables(tmp_path, n_episodes=1)
    sample = caption_rows(["x"], episode_of=lambda i: 0).with_columns(frame_index=pl.lit(99))
    with LocalStubServer() as stub:
        client = build_client({"backend": "openai", "model": "m", "base_url": stub.base_url})
        with pytest.raises(ValueError, match=r"keyframe \('ds', 0, '.*', 99\) has no row"):
            second_captions(sample, keyframes, manifest, tmp_path, client, SETTINGS)


def test_end_to_end_two_stub_models_agree_except_where_a_caption_differs(tmp_path, embedder):
    keyframes, manifest, _ = keyframe_tables(tmp_path, n_episodes=6)
    with LocalStubServer() as stub:

        def client(model):
            return build_client({"backend": "openai", "model": model, "base_url": stub.base_url})

        primary = second_captions(
            keyframes, keyframes, manifest, tmp_path, client("primary-vlm"), SETTINGS
        ).with_columns(ai_caption_reused_from=pl.lit(None, pl.Int64))
        odd = (pl.col("episode_index") == 4) & (pl.col("frame_index") == 10)
        primary = primary.with_columns(
            ai_caption=pl.when(odd).then(pl.lit(COFFEE)).otherwise("ai_caption")
        )
        settings = AgreementSettings(sample_size=8, seed=3, threshold=0.7)
        report = caption_agreement(
            primary,
            keyframes,
            manifest,
            tmp_path,
            client("second-vlm"),
            embedder,
            SETTINGS,
            settings,
        )
        assert stub.kinds == {"caption": 12 + 8}
    sampled = sample_keyframes(primary, 8, 3).select("episode_index", "frame_index").rows()
    assert (4, 10) in sampled and (report.sampled, report.n) == (8, 8)
    assert report.primary_model == "primary-vlm:local-stub"
    assert report.secondary_model == "second-vlm:local-stub"
    flagged = [(p.episode_index, p.frame_index) for p in report.flagged]
    assert flagged == [(4, 10)] and report.flagged[0].primary == COFFEE
    assert report.median == pytest.approx(1.0, abs=1e-5)  # same stub, same prompt: same text


def test_settings_defaults_match_pipeline_yaml():
    assert AgreementSettings(**pipeline_config("caption_agreement")) == AgreementSettings()
