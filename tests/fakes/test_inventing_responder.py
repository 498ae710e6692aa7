"""The fake server's InventingResponder: which answers invent a fact, and which fact."""

from tests.fakes.openai_server import INVENTED_FACTS, InventingResponder


def request(text: str) -> dict:
    return {"messages": [{"role": "system", "content": "policy"}, {"role": "user", "content": text}]}


def test_a_deterministic_share_of_answers_invents_a_fact_the_message_does_not_hold():
    first, again = InventingResponder(fraction=0.3), InventingResponder(fraction=0.3)
    answers = [first(request(f"member {i}"), 0)["rationale"] for i in range(200)]
    assert answers == [again(request(f"member {i}"), 0)["rationale"] for i in range(200)]
    changed = [a for a in answers if a != "Default fake answer."]
    assert 40 <= len(changed) <= 80 and set(first.invented) == set(changed)
    sentences = {sentence: claim for sentence, claim, _ in INVENTED_FACTS}
    for rationale in changed:
        sentence = rationale.removeprefix("Default fake answer. ")
        assert first.invented[rationale] == sentences[sentence]


def test_a_fact_the_user_message_already_states_is_not_invented():
    every_fact_but_one = " ".join(word for _, _, words in INVENTED_FACTS[1:] for word in words)
    responder = InventingResponder(fraction=1.0)
    for i in range(20):
        assert responder(request(f"{every_fact_but_one} {i}"), i)["rationale"].endswith(INVENTED_FACTS[0][0])


def test_fraction_zero_leaves_the_base_answers_alone():
    responder = InventingResponder(lambda req, n: {"label": "no_match", "rationale": "Plain.", "cited_rules": []},
                                   fraction=0.0)  # fmt: skip
    assert responder(request("x"), 0) == {"label": "no_match", "rationale": "Plain.", "cited_rules": []}
