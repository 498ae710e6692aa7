"""Turn the teacher's raw answer into a validated one, and read the label distribution from token logprobs.

:func:`read_completion` is the one reader of a chat completion, for online answers and Batch API output lines."""

import json
import math
from dataclasses import dataclass

from .base import LabelSpace, TeacherAnswer


@dataclass(frozen=True)
class Parsed:
    label: str = ""
    rationale: str = ""
    cited_rules: tuple[str, ...] = ()
    error_kind: str = ""
    error: str = ""


def parse_answer(raw: str, space: LabelSpace) -> Parsed:
    """Schema violations (bad JSON, label outside the set, unknown rule ID) come back as ``error_kind``."""
    try:
        data = json.loads(raw)
    except (TypeError, json.JSONDecodeError) as error:
        return Parsed(error_kind="malformed_json", error=f"not valid JSON: {error}")
    if not isinstance(data, dict):
        return Parsed(error_kind="malformed_json", error="the answer is not a JSON object")
    label, rationale, cited = data.get("label"), data.get("rationale", ""), data.get("cited_rules", [])
    if not isinstance(label, str) or label not in space.labels:
        return Parsed(error_kind="label_outside_set", error=f"label {label!r} is not one of {', '.join(space.labels)}")
    if not isinstance(rationale, str):
        return Parsed(error_kind="schema_violation", error="rationale must be text")
    if not isinstance(cited, list) or not all(isinstance(rule, str) for rule in cited):
        return Parsed(error_kind="schema_violation", error="cited_rules must be a list of rule IDs")
    unknown = [rule for rule in cited if rule not in space.rule_ids]
    if unknown:
        return Parsed(error_kind="unknown_rule", error=f"cites rules not in this version: {', '.join(unknown)}")
    return Parsed(label=label, rationale=rationale.strip(), cited_rules=tuple(dict.fromkeys(cited)))


def read_choice(answer: TeacherAnswer, body) -> dict | None:
    """The first choice of a chat completion body, its content in ``answer.raw`` and its tokens added to the
    answer's; None, with ``error_kind`` ``malformed_response``, when the body holds no choice."""
    try:
        choice = body["choices"][0]
        raw = (choice.get("message") or {}).get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        answer.error_kind, answer.error = "malformed_response", "the response holds no chat completion choice"
        answer.raw = json.dumps(body)[:5000]
        return None
    usage = body.get("usage") or {}
    answer.input_tokens += int(usage.get("prompt_tokens") or 0)
    answer.cached_input_tokens += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    answer.output_tokens += int(usage.get("completion_tokens") or 0)
    answer.raw = raw
    return choice


def spread(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (equally when they are all 0), in whole numbers that add up
    to ``total`` exactly (largest remainders get the leftover units, earlier ones first on ties)."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    leftover = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


def read_completion_choices(answers: list[TeacherAnswer], body, space: LabelSpace, *, logprobs: bool) -> list[bool]:
    """Fill ``answers`` from the choices of one chat completion asked for ``n = len(answers)`` (choice ``i`` goes
    to ``answers[i]``, by the choice's ``index``). The usage covers the whole request: its prompt tokens (and the
    cached ones) are billed once, so they go to the first answer; its completion tokens are shared by the choices
    in proportion to the length of their content. Shares add up to the reported usage exactly, so a run's totals
    are what the provider billed. Returns, per answer, whether its choice is a valid answer; an answer whose
    choice is missing (an endpoint that ignores ``n``) is left as it was, with ``error_kind``
    ``missing_choice``."""
    try:
        choices = {int(c.get("index", i)): c for i, c in enumerate(body["choices"])}
    except (KeyError, TypeError, AttributeError, ValueError):
        choices = {}
    usage = (body.get("usage") if isinstance(body, dict) else None) or {}
    present = [i for i in range(len(answers)) if i in choices] or [0]  # none: a malformed body, billed on the 1st
    contents = [len((choices.get(i, {}).get("message") or {}).get("content") or "") for i in present]
    outputs = dict(zip(present, spread(int(usage.get("completion_tokens") or 0), contents), strict=True))
    valid = []
    for i, answer in enumerate(answers):
        if choices and i not in choices:
            answer.error_kind, answer.error = "missing_choice", "the response holds no choice for this sample"
            valid.append(False)
            continue
        first = i == present[0]
        share = {
            "choices": [choices[i]] if i in choices else [],
            "usage": {
                "prompt_tokens": usage.get("prompt_tokens") if first else 0,
                "completion_tokens": outputs.get(i, 0),
                "prompt_tokens_details": (usage.get("prompt_tokens_details") if first else None),
            },
        }
        valid.append(read_completion(answer, share, space, logprobs=logprobs))
    return valid


def read_completion(answer: TeacherAnswer, body, space: LabelSpace, *, logprobs: bool) -> bool:
    """Fill ``answer`` from a chat completion body (parsed JSON); tokens are added to what it holds already (a
    retried request pays for every try). False, with ``error_kind`` set, when the body holds no choice
    (``malformed_response``) or the answer violates the schema (see :func:`parse_answer`)."""
    choice = read_choice(answer, body)
    if choice is None:
        return False
    raw = answer.raw
    parsed = parse_answer(raw, space)
    answer.error_kind, answer.error = parsed.error_kind, parsed.error
    if parsed.error_kind:
        return False
    answer.label, answer.rationale, answer.cited_rules = parsed.label, parsed.rationale, list(parsed.cited_rules)
    tokens = (choice.get("logprobs") or {}).get("content")
    if logprobs and tokens:
        answer.label_probs = label_probs_from_logprobs(tokens, raw, space.labels)
    return True


def _field(item, name: str):
    """Logprob entries come as dicts (raw JSON) or SDK objects."""
    return item[name] if isinstance(item, dict) else getattr(item, name)


def label_probs_from_logprobs(tokens: list, content: str, labels: tuple[str, ...]) -> dict[str, float] | None:
    """The label distribution at the token where the label value starts.

    ``tokens`` are the choice's logprob entries (dicts or objects with ``token`` and ``top_logprobs``). We find the
    token that begins the label value (right after ``"label": "``), and give each label the probability of the
    alternatives at that position that are a prefix of it. Labels sharing that first token split it equally;
    probabilities are normalised over the labels. Returns None when the position cannot be found.
    """
    marker = content.find('"label"')
    if marker < 0:
        return None
    value_start = content.find('"', content.find(":", marker) + 1) + 1
    offset = 0
    for token in tokens:
        text = _field(token, "token")
        if offset <= value_start < offset + len(text):
            local = value_start - offset
            scores: dict[str, float] = dict.fromkeys(labels, 0.0)
            for alternative in _field(token, "top_logprobs") or []:
                alt_text, alt_logprob = _field(alternative, "token"), _field(alternative, "logprob")
                piece = alt_text[local:] if alt_text.startswith(text[:local]) else ""
                if not piece:
                    continue
                matching = [label for label in labels if label.startswith(piece) or piece.startswith(label)]
                for label in matching:
                    scores[label] += math.exp(alt_logprob) / len(matching)
            total = sum(scores.values())
            return {label: score / total for label, score in scores.items()} if total > 0 else None
        offset += len(text)
    return None
