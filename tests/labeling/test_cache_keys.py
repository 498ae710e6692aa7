"""The per-run cache key builder gives exactly the keys of the reference ``cache_key`` (earlier cache entries
stay valid), while hashing the shared system prompt only once."""

from labeling.pipeline.context import CacheKeys, cache_key
from labeling.teacher.messages import build_messages

PARAMS = {"model": "m", "temperature": 0.2, "response_format": {"type": "json_schema", "json_schema": {"b": [2]}}}
PROMPT = 'You label pairs.\n"R1": skills — «quoted», naïve ✓ </job>'


def test_keys_match_the_reference_for_any_text_and_sample():
    keys = CacheKeys(PARAMS, PROMPT)
    for member, job, index in [
        ({"member_id": "m1", "skills": ["Python"]}, {"job_id": "j1", "title": "Data"}, 0),
        ({"member_id": "m2", "summary": 'Zoë, 日本語, "quotes", \\ back'}, {"job_id": "j2", "title": "<b>x</b>"}, 3),
    ]:
        messages = build_messages(PROMPT, member, job)
        assert keys.key(messages, index) == cache_key(PARAMS, messages, index)


def test_keys_differ_by_sample_user_message_and_prompt():
    keys = CacheKeys(PARAMS, PROMPT)
    one = build_messages(PROMPT, {"member_id": "m1"}, {"job_id": "j1"})
    two = build_messages(PROMPT, {"member_id": "m2"}, {"job_id": "j1"})
    assert len({keys.key(one, 0), keys.key(one, 1), keys.key(two, 0)}) == 3
    other_prompt = build_messages(PROMPT + "!", {"member_id": "m1"}, {"job_id": "j1"})
    assert keys.key(other_prompt, 0) == cache_key(PARAMS, other_prompt, 0) != keys.key(one, 0)


def test_a_requests_sample_keys_are_the_reference_keys_of_each_sample():
    keys = CacheKeys(PARAMS, PROMPT)
    messages = build_messages(PROMPT, {"member_id": "m1", "skills": ["SQL"]}, {"job_id": "j1"})
    assert keys.keys(messages, [0, 2, 4]) == [cache_key(PARAMS, messages, index) for index in (0, 2, 4)]
    odd = [{"role": "system", "content": "another prompt"}, messages[1]]  # the reference's way, same keys
    assert keys.keys(odd, [1, 3]) == [cache_key(PARAMS, odd, 1), cache_key(PARAMS, odd, 3)]
