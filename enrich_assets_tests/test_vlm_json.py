import pytest

from enrich_assets.models.vlm.json_output import (
    MalformedOutput,
    check_text,
    parse_json,
    repair_prompt,
)


def test_plain_json_object_and_array():
    assert parse_json('{"task": "open the drawer"}') == {"task": "open the drawer"}
    assert parse_json("[1, 2, 3]") == [1, 2, 3]


def test_fenced_and_prefixed_json_is_extracted():
    text = 'Sure! Here you go:\n```json\n{"qa": [{"q": "a } in a string"}]}\n```\nAnything else?'
    assert parse_json(text) == {"qa": [{"q": "a } in a string"}]}
    assert parse_json('The answer is {"n": 2}. Hope it helps.') == {"n": 2}


def test_unfinished_fence_still_parses_a_complete_value():
    assert parse_json('```json\n{"n": 2}') == {"n": 2}


@pytest.mark.parametrize(
    ("text", "kwargs", "reason"),
    [
        ('{"subtasks": [{"text": "reach", "start_fr', {}, "truncated"),
        ('{"a": "unterminated string}', {}, "truncated"),
        ('{"a": 1}', {"truncated": True}, "truncated"),
        ("I'm sorry, but I can't help with that.", {}, "refusal"),
        ("I cannot describe this image.", {}, "refusal"),
        ('{"a": 1}', {"refusal": "policy"}, "refusal"),
        ("A robot arm and a cup.", {}, "no-json"),
        ("", {}, "no-json"),
        ("{'a': 1}", {}, "invalid-json"),
        ('{"a": 1,}', {}, "invalid-json"),
    ],
)
def test_malformed_outputs_name_their_reason(text, kwargs, reason):
    with pytest.raises(MalformedOutput) as info:
        parse_json(text, **kwargs)
    assert info.value.reason == reason


def test_text_answers_reject_refusals_and_empty_text():
    assert check_text("  A robot picks up a cup.  ") == "A robot picks up a cup."
    for bad in ("Sorry, I can't see the image.", "   "):
        with pytest.raises(MalformedOutput):
            check_text(bad)
    with pytest.raises(MalformedOutput, match="refusal"):
        check_text("fine text", refusal="content policy")
    with pytest.raises(MalformedOutput, match="truncated"):
        check_text("The robot picks up the", truncated=True)


def test_repair_prompt_says_what_went_wrong():
    error = MalformedOutput("invalid-json", "Expecting ',' at char 12")
    prompt = repair_prompt(error, json_output=True)
    assert "Expecting ','" in prompt and "only the JSON" in prompt
    assert "cut off" in repair_prompt(MalformedOutput("truncated", "x"), json_output=True)
    assert "JSON" not in repair_prompt(MalformedOutput("refusal", "x"), json_output=False)
