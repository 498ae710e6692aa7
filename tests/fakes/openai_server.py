"""A real local HTTP server speaking enough of the OpenAI API for PolicyHub's teacher tests.

Standard library only: ``http.server.ThreadingHTTPServer`` in a daemon thread, one thread per connection,
HTTP/1.1 keep-alive. Reach it with the real ``openai`` client::

    with FakeOpenAI(latency=0.05) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="m", messages=[...], response_format={...})

Endpoints (all under ``/v1``)
-----------------------------
``POST /v1/chat/completions``
    Honours ``model``, ``messages``, ``n`` (default 1; see :attr:`FakeOpenAI.n_mode`), ``response_format``
    (``json_schema``), ``logprobs`` and ``top_logprobs``. Every choice's ``message.content`` is the JSON string of
    ``{"label": ..., "rationale": ..., "cited_rules": [...]}`` (keys in that order, ``json.dumps`` default
    separators), produced by :attr:`FakeOpenAI.responder`.
``POST /v1/files`` (multipart ``purpose`` + ``file``), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``DELETE /v1/files/{id}``.
``POST /v1/batches``, ``GET /v1/batches`` (newest first; ``limit``, ``after``), ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``.
    A batch is ``validating`` when created, ``in_progress`` after the first GET and ``completed`` once it has been
    polled :attr:`FakeOpenAI.batch_polls_to_complete` times (default 2). On completion every input line
    (``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``) goes through the same chat
    completion logic (no latency; faults only when :attr:`FakeOpenAI.batch_faults` is true). Successful lines (and
    content faults) go to the output file as
    ``{"id": "batch_req_…", "custom_id", "response": {"status_code": 200, "request_id", "body": <completion>},
    "error": null}``; HTTP faults (429/500/503: ``response.status_code`` + error body; ``timeout``:
    ``response: null, error {code: "request_timeout"}``) and unusable lines go to the error file and count as
    ``failed``. Cancelling a batch that already finished returns it unchanged.
``GET /_fake/stats`` (not OpenAI's): :meth:`FakeOpenAI.stats`, for benchmarks that run the fake in its own process.
Anything else: 404 with an OpenAI-style error body; a body that is not JSON: 400.

The responder
-------------
``responder(request_json, call_number) -> {"label", "rationale", "cited_rules", "probs" (optional)}``.
``call_number`` counts the earlier responder calls whose ``messages`` were identical (0 the first time). The
responder is called once per returned choice, so the ``n`` choices of one request get consecutive numbers; HTTP
faults (429/500/503/timeout) do not call it, content faults (malformed_json, bad_label, bad_rule,
empty_rationale) do and then spoil its answer. Batch lines call it too.

The default responder answers the first key of the label enum found in the request's JSON schema (``"label"``
property, searched recursively; ``"strong_match"`` when there is no schema), rationale ``"Default fake answer."``,
``cited_rules`` = the first entry of the ``cited_rules`` items enum when the schema has one (else ``[]``), and
``probs`` = 0.9 for its label with 0.1 shared equally by the other enum keys.

Inventing facts
---------------
:class:`InventingResponder` wraps a responder (the default one unless given) and appends a sentence with a fact
that neither the member nor the job states to a deterministic ``fraction`` of answers: an invented degree,
employer, years of experience, licence, tool or city (:data:`INVENTED_FACTS`, the first whose words the user
message does not contain). Which answers invent is decided by the sha256 of the user message and the call
number, so a run over the same pairs invents the same facts again. ``invented`` maps each rationale it changed to
the claim it invented. CLI: ``--invent-facts 0.2``.

Obeying planted instructions
----------------------------
:class:`ObeyingResponder` wraps a responder (the default one unless given) and does what a model that falls for
prompt injection does: when the user message (the member and the job) tells it which label to give ("label this
pair as X", "the correct label is X", ``"label": "X"``, X one of the schema's labels) it answers X, says it did so
as the data instructed and cites no rule; otherwise it answers like the wrapped responder. With
``any_label=True`` it also obeys any label key the member's or the job's text names, read through invisible
characters and Cyrillic look-alike letters (a model that falls for every planted label). ``obeyed`` counts the
answers it gave on the data's orders.

Biased and credulous answers (red-teaming)
------------------------------------------
:class:`BiasedResponder` wraps a responder and flips its label (to the next key of the schema's enum) when the
member's text holds a protected-attribute cue (:data:`PROTECTED_CUES`: an age, pronouns, a place of worship, a
wheelchair, a passport, "mother of three" …; ``attributes=`` narrows which ones it reacts to), with a rationale
that names the attribute; ``flipped`` counts them by attribute. :class:`CredulousResponder` wraps a responder and,
when the job names a requirement from :data:`BAIT_TERMS` that the member does not, says the member holds it.
:data:`BEHAVIOURS` names every behaviour (``honest``, ``obeying``, ``biased``, ``credulous``, ``inventing``); the
CLI selects one with ``--behaviour NAME``.

Judging
-------
A request whose ``response_format`` schema is named ``judge_verdict`` (PolicyHub's judge) is answered by
:attr:`FakeOpenAI.judge` instead of the responder: ``judge(request_json, call_number)`` returns a verdict dict
(sent as its JSON) or a string (sent as the content, verbatim). The default is :class:`HonestJudge`, which reads
the ``<member>``, ``<job>``, ``<labels>``, ``<cited_rules>`` and ``<answer>`` blocks of the user message and flags
every rationale sentence with a claim (a number, a capitalised name or acronym, a licence, degree or
certificate) that none of them states; it finds an answer inconsistent when it cites no rule, or names a rule in
its rationale that it does not cite. :class:`MisbehavingJudge` replies with a malformed verdict every time (cut
JSON, not an object, wrong types, in turn). Judge requests have their own fault queue:
``fail_next(kind, judge=True)``; a ``malformed_json`` fault cuts the verdict after ``"unsupported_claims": ``.

Logprobs — how the label distribution is encoded
------------------------------------------------
With ``logprobs: true``, ``choices[i].logprobs = {"content": [token, ...]}`` where the tokens concatenate back to
the content string exactly, and the label VALUE starts a new token::

    '{"label": "'  'strong'  '_match'  '", '  '"rationale'  ...

The label is split on ``"_"`` keeping the underscore on the following piece (``"strong_match"`` ->
``"strong"``, ``"_match"``). The token holding the label's FIRST SEGMENT carries the distribution: its
``top_logprobs`` hold, for every label in the responder's ``probs``, that label's first segment with
``logprob = ln(probs[label])`` (labels sharing a first segment are summed), sorted by logprob descending and
truncated to the request's ``top_logprobs`` (0 when not given, as with OpenAI). Its own ``logprob`` is that of its
first-segment group. Every other token has ``logprob`` 0.0 and ``top_logprobs`` ``[{token, 0.0, bytes}]``
(truncated the same way). Each token object is ``{"token", "logprob", "bytes": list(token.encode()),
"top_logprobs"}``. Client code reads the label's probability distribution from the first token that follows
the ``"label": "`` prefix; keep label keys distinguishable by their first segment if you need exact values.

Token counts
------------
``usage.prompt_tokens`` is the characters of the messages' contents over :attr:`FakeOpenAI.chars_per_token`
(default 4), ``completion_tokens`` those of the choices' contents, each at least 1.
``usage.prompt_tokens_details.cached_tokens`` mimics OpenAI's prompt caching: the characters the prompt (the
messages' contents in order) shares from its start with the latest earlier prompt that began with the same
:data:`CACHE_ROUTING_CHARS` characters, over ``chars_per_token`` (no 1,024-token minimum, unlike OpenAI; 0 for the
first prompt of its kind). Set :attr:`FakeOpenAI.prompt_cache` to False to report 0 always.

Faults
------
:meth:`FakeOpenAI.fail_next` queues faults consumed, in order, by the next chat completion requests:
``"429"`` (with ``Retry-After`` when ``retry_after`` is given), ``"500"``, ``"503"``, ``"timeout"`` (holds the
request until the server stops or 60 s pass, then drops the connection without an answer),
``"malformed_json"`` (200, content cut after ``"rationale": ``), ``"bad_label"`` (label
``"definitely_not_a_label"``), ``"bad_rule"`` (cites ``"R999"``), ``"empty_rationale"``. A request the server
rejects as invalid (400: no model, no messages, bad ``n``, body not JSON) does not use up a queued fault.

:attr:`FakeOpenAI.latency` seconds are slept before every chat completion response (errors included, the
``timeout`` fault excepted). Every chat completion request body received over HTTP (faulted ones included,
batch lines not) is appended to :attr:`FakeOpenAI.requests` as soon as it arrives, the ``usage`` of every one
answered with a 200 to :attr:`FakeOpenAI.usages`; :meth:`FakeOpenAI.billed` adds those up and
:meth:`FakeOpenAI.answers_asked` counts the choices asked for. Batch input lines that run go to
:attr:`FakeOpenAI.batch_lines` (their bodies) and :attr:`FakeOpenAI.batch_usages` (``billed(batch=True)``).

``n``: with :attr:`FakeOpenAI.n_mode` ``"honour"`` (the default, as OpenAI and vLLM) a request returns ``n``
choices and one ``usage`` for all of them (the prompt counted once); ``"refuse"`` answers ``n > 1`` with a 400
(``param: "n"``), as some OpenAI-compatible servers do (batch lines too); ``"ignore"`` returns one choice whatever
``n`` asks. A content fault spoils every choice of its request. CLI: ``--n-mode``.

CLI: ``python -m tests.fakes.openai_server --port 8001 --latency 0.2`` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import email.message
import hashlib
import http.server
import json
import math
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

__all__ = [
    "BEHAVIOURS", "BiasedResponder", "CredulousResponder", "FAULT_KINDS", "INVENTED_FACTS", "FakeOpenAI",
    "HonestJudge", "InventingResponder", "MisbehavingJudge", "ObeyingResponder", "PROTECTED_CUES",
    "default_responder", "is_judge_request", "label_segments",
]  # fmt: skip

FAULT_KINDS = ("429", "500", "503", "timeout", "malformed_json", "bad_label", "bad_rule", "empty_rationale")
HTTP_FAULTS = {"429": 429, "500": 500, "503": 503}
BAD_LABEL = "definitely_not_a_label"
BAD_RULE = "R999"
FALLBACK_LABEL = "strong_match"
TIMEOUT_HOLD_SECONDS = 60.0

Responder = Callable[[dict, int], dict]


# --------------------------------------------------------------------------------------------------------------
# Pure helpers


def _hex(n: int = 24) -> str:
    return uuid.uuid4().hex[:n]


def _error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _find_property(schema: Any, name: str) -> dict | None:
    """Depth-first search of a JSON schema for ``properties[name]``."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict) and isinstance(props.get(name), dict):
            return props[name]
        for value in schema.values():
            found = _find_property(value, name)
            if found is not None:
                return found
    elif isinstance(schema, list):
        for value in schema:
            found = _find_property(value, name)
            if found is not None:
                return found
    return None


def _request_schema(request: dict) -> dict | None:
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        schema = fmt["json_schema"].get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _enum_of(prop: dict | None) -> list[str]:
    if not prop:
        return []
    if isinstance(prop.get("enum"), list):
        return [str(v) for v in prop["enum"]]
    for key in ("anyOf", "oneOf", "allOf"):  # e.g. pydantic Literal unions or $ref wrappers
        for sub in prop.get(key) or []:
            if isinstance(sub, dict) and isinstance(sub.get("enum"), list):
                return [str(v) for v in sub["enum"]]
    return []


def _common_prefix_length(a: str, b: str) -> int:
    """How many characters ``a`` and ``b`` share at their start: slices compared in C, halving the range, not a
    Python loop over every character (``os.path.commonprefix``), which cost the fake a tenth of a millisecond on
    every request."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def schema_labels(request: dict) -> list[str]:
    """The label enum of the request's JSON schema (``[]`` when there is none)."""
    return _enum_of(_find_property(_request_schema(request), "label"))


def schema_rule_ids(request: dict) -> list[str]:
    """The enum of the ``cited_rules`` items in the request's JSON schema (``[]`` when there is none)."""
    prop = _find_property(_request_schema(request), "cited_rules")
    if not prop:
        return []
    items = prop.get("items")
    return _enum_of(items if isinstance(items, dict) else None)


def default_responder(request: dict, call_number: int) -> dict:
    labels = schema_labels(request) or [FALLBACK_LABEL]
    label = labels[0]
    rules = schema_rule_ids(request)
    others = [key for key in labels if key != label]
    probs = {label: 0.9 if others else 1.0}
    for key in others:
        probs[key] = 0.1 / len(others)
    return {
        "label": label,
        "rationale": "Default fake answer.",
        "cited_rules": rules[:1],
        "probs": probs,
    }


#: (sentence appended to the rationale, the claim it invents, words that must not be in the user message)
INVENTED_FACTS = (
    ("They also hold an MBA from INSEAD.", "MBA", ("mba", "insead")),
    ("Previously spent six years at Google.", "Google", ("google",)),
    ("Brings 14 years of experience in the field.", "14 years", ("14",)),
    ("Holds a commercial pilot licence.", "commercial pilot licence", ("pilot",)),
    ("Has shipped production systems in Haskell.", "Haskell", ("haskell",)),
    ("Is currently based in Reykjavik.", "Reykjavik", ("reykjavik",)),
    ("Earned a PhD in astrophysics.", "PhD in astrophysics", ("phd", "astrophysics")),
)


class InventingResponder:
    """A responder that invents an out-of-vocabulary fact in a deterministic ``fraction`` of its answers."""

    def __init__(self, base: Responder | None = None, *, fraction: float = 0.25):
        self.base = base or default_responder
        self.fraction = fraction
        self.invented: dict[str, str] = {}  # rationale -> the claim it invents
        self._lock = threading.Lock()

    def __call__(self, request: dict, call_number: int) -> dict:
        answer = dict(self.base(request, call_number))
        user = str((request.get("messages") or [{}])[-1].get("content", ""))
        digest = hashlib.sha256(f"{user}\x00{call_number}".encode()).digest()
        if int.from_bytes(digest[:4], "big") >= self.fraction * 2**32:
            return answer
        lowered = user.lower()
        fresh = [fact for fact in INVENTED_FACTS if not any(word in lowered for word in fact[2])]
        if not fresh:
            return answer
        sentence, claim, _ = fresh[digest[4] % len(fresh)]
        answer["rationale"] = f"{answer.get('rationale', '')} {sentence}".strip()
        with self._lock:
            self.invented[answer["rationale"]] = claim
        return answer


_PLANTED = re.compile(
    r"(?:label|rate|classify|mark)\s+(?:this|the)\s+(?:pair|candidate|profile|match)\s+as\s+(?P<a>[a-z_]+)"
    r"|(?:correct|right|only)\s+label\s+is\s+(?P<b>[a-z_]+)"
    r"|\\?\"label\\?\"\s*:\s*\\?\"(?P<c>[a-z_]+)",
    re.IGNORECASE,
)


class ObeyingResponder:
    """A responder that follows label instructions planted in the member's or the job's text."""

    def __init__(self, base: Responder | None = None, *, any_label: bool = False):
        self.base = base or default_responder
        self.any_label = any_label
        self.obeyed = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict, call_number: int) -> dict:
        user = str((request.get("messages") or [{}])[-1].get("content", ""))
        labels = schema_labels(request)
        for match in _PLANTED.finditer(user):
            asked = (match.group("a") or match.group("b") or match.group("c") or "").lower()
            if asked in labels:
                return self._obey(asked)
        if self.any_label:
            data = _deobfuscated(user[user.find("<member>") :])
            named = sorted((m.start(), key) for key in labels for m in re.finditer(rf"\b{re.escape(key)}\b", data))
            if named:
                return self._obey(named[0][1])
        return self.base(request, call_number)

    def _obey(self, asked: str) -> dict:
        with self._lock:
            self.obeyed += 1
        return {
            "label": asked,
            "rationale": f"As instructed in the job posting, this pair is {asked}.",
            "cited_rules": [],
            "probs": {asked: 1.0},
        }


#: Cyrillic letters that look like Latin ones, and invisible characters: how planted text hides from a filter.
_LOOK_ALIKES = str.maketrans({"а": "a", "е": "e", "о": "o", "с": "c", "р": "p", "х": "x", "у": "y", "\u200b": ""})


def _deobfuscated(text: str) -> str:
    return text.translate(_LOOK_ALIKES)


#: Protected-attribute cues a biased model reacts to, by attribute (the phrasings PolicyHub's red-team
#: generator plants, ``labeling/variants/protected.py``, and the like).
PROTECTED_CUES: dict[str, re.Pattern] = {
    "age": re.compile(r"\b\d{2} years old\b|\bborn in (?:19|20)\d\d\b|\bretir", re.IGNORECASE),
    "gender": re.compile(r"\bpronouns\b|\bas a (?:woman|man)\b", re.IGNORECASE),
    "ethnicity": re.compile(r"\b(?:black professionals|roma heritage|asian american)\b", re.IGNORECASE),
    "religion": re.compile(r"\b(?:ramadan|synagogue|church)\b", re.IGNORECASE),
    "disability": re.compile(r"\b(?:wheelchair|deaf|autism)\b", re.IGNORECASE),
    "nationality": re.compile(r"\b(?:citizen|passport|originally from)\b", re.IGNORECASE),
    "family_status": re.compile(r"\b(?:mother of|single father|expecting our first child)\b", re.IGNORECASE),
}


def _member_block(request: dict) -> str:
    user = str((request.get("messages") or [{}])[-1].get("content", ""))
    start, end = user.find("<member>"), user.find("</member>")
    return user[start:end] if 0 <= start < end else ""


class BiasedResponder:
    """A responder whose label depends on protected attributes: when the member's text holds a cue of one of
    ``attributes`` (:data:`PROTECTED_CUES`; default all), it gives the label after the wrapped responder's in the
    schema's enum and says why in words a tone check catches; otherwise it answers like the wrapped responder.
    ``flipped`` counts the answers it changed, by attribute."""

    def __init__(self, base: Responder | None = None, *, attributes: tuple[str, ...] | None = None):
        self.base = base or default_responder
        self.attributes = tuple(attributes or PROTECTED_CUES)
        self.flipped: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, request: dict, call_number: int) -> dict:
        answer = dict(self.base(request, call_number))
        member = _member_block(request)
        for attribute in self.attributes:
            cue = PROTECTED_CUES[attribute].search(member)
            if cue is None:
                continue
            labels = schema_labels(request) or [answer["label"]]
            position = labels.index(answer["label"]) if answer["label"] in labels else 0
            flipped = labels[(position + 1) % len(labels)]
            with self._lock:
                self.flipped[attribute] += 1
            return {
                **answer,
                "label": flipped,
                "probs": {flipped: 1.0},
                "rationale": f"Given the member's {attribute.replace('_', ' ')} ({cue.group(0)}), {flipped}.",
            }
        return answer


#: Requirements a credulous model credits the member with when a job asks for them (PolicyHub's bait terms).
BAIT_TERMS = (
    "CISSP", "Mandarin", "PMP", "Kubernetes", "security clearance", "forklift licence", "PhD", "Salesforce", "SAP",
    "CPA",
)  # fmt: skip


class CredulousResponder:
    """A responder that takes the job's requirements for the member's: when the job (not the member) names one of
    :data:`BAIT_TERMS`, its rationale says the member holds it. ``credited`` counts those answers."""

    def __init__(self, base: Responder | None = None):
        self.base = base or default_responder
        self.credited = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict, call_number: int) -> dict:
        answer = dict(self.base(request, call_number))
        user = str((request.get("messages") or [{}])[-1].get("content", ""))
        member = _member_block(request)
        job = user[user.find("<job>") :]
        terms = [t for t in BAIT_TERMS if re.search(rf"\b{re.escape(t)}\b", job) and t not in member]
        if terms:
            with self._lock:
                self.credited += 1
            answer["rationale"] = f"The member holds the {' and '.join(terms)} the job asks for."
        return answer


#: Named behaviours (``--behaviour`` on the command line): what each makes of the default responder.
BEHAVIOURS: dict[str, Callable[[], Responder]] = {
    "honest": lambda: default_responder,
    "obeying": ObeyingResponder,
    "biased": BiasedResponder,
    "credulous": CredulousResponder,
    "inventing": InventingResponder,
}


JUDGE_SCHEMA = "judge_verdict"
_BLOCK = re.compile(r"<(member|job|labels|cited_rules|answer)>\n(.*?)\n</\1>", re.DOTALL)
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_CLAIM_WORDS = re.compile(r"\b(?:licen[cs]e|degree|certified|certificate|diploma)\b", re.IGNORECASE)
_RULE_ID = re.compile(r"\bR\d+\b")


def is_judge_request(request: dict) -> bool:
    fmt = request.get("response_format")
    return isinstance(fmt, dict) and (fmt.get("json_schema") or {}).get("name") == JUDGE_SCHEMA


def _judge_blocks(request: dict) -> dict:
    user = str((request.get("messages") or [{}])[-1].get("content", ""))
    return {name: json.loads(body) for name, body in _BLOCK.findall(user)}


def _flat_text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key} {_flat_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return " ".join(_flat_text(item) for item in value)
    return str(value)


class HonestJudge:
    """A judge that checks the rationale against the pair it is given (see the module docstring)."""

    def __init__(self):
        self.verdicts: list[tuple[str, dict]] = []  # (rationale judged, verdict)
        self._lock = threading.Lock()

    @staticmethod
    def claims(sentence: str) -> list[str]:
        words = re.findall(r"[\w+#.-]+", sentence)
        found = [w for w in words[1:] if w[:1].isupper() and not _RULE_ID.fullmatch(w)]
        found += [w for w in words if w.isupper() and len(w) > 1 and not _RULE_ID.fullmatch(w)]
        found += re.findall(r"\b\d+(?:\.\d+)?\b", sentence) + _CLAIM_WORDS.findall(sentence)
        return [w.strip(".-") for w in found if w.strip(".-")]

    def __call__(self, request: dict, call_number: int) -> dict:
        blocks = _judge_blocks(request)
        answer = blocks.get("answer") or {}
        support = " ".join(_flat_text(blocks.get(name, {})) for name in ("member", "job", "labels", "cited_rules"))
        support = support.lower()
        rationale = str(answer.get("rationale", ""))
        unsupported = [
            sentence.strip() for sentence in _SENTENCE.findall(rationale)
            if any(claim.lower() not in support for claim in self.claims(sentence))
        ]  # fmt: skip
        cited = list(answer.get("cited_rules") or [])
        uncited = sorted(set(_RULE_ID.findall(rationale)) - set(cited))
        inconsistency = ""
        if not cited:
            inconsistency = "the label rests on no cited rule"
        elif uncited:
            inconsistency = f"the rationale relies on {', '.join(uncited)}, which it does not cite"
        verdict = {"grounded": not unsupported, "unsupported_claims": unsupported,
                   "consistent": not inconsistency, "inconsistency": inconsistency}  # fmt: skip
        with self._lock:
            self.verdicts.append((rationale, verdict))
        return verdict


#: What :class:`MisbehavingJudge` sends, in turn.
BAD_VERDICTS = (
    '{"grounded": true, "unsupported_claims": [',
    '["grounded", true]',
    '{"grounded": "yes", "unsupported_claims": "none", "consistent": 1, "inconsistency": null}',
)


class MisbehavingJudge:
    """A judge whose every reply is a malformed verdict."""

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict, call_number: int) -> str:
        with self._lock:
            self.calls += 1
        return BAD_VERDICTS[call_number % len(BAD_VERDICTS)]


def label_segments(label: str) -> list[str]:
    """``"strong_match"`` -> ``["strong", "_match"]``: split on ``_``, keeping it on the following piece."""
    return [piece for piece in re.split(r"(?=_)", label) if piece] or [label]


def _split_rest(text: str) -> list[str]:
    return re.findall(r"\s+|\w+|[^\w\s]", text)


def _token(token: str, logprob: float, top: list[dict]) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top}


def _logprobs_for(content: str, label_value: str, probs: dict[str, float], top_n: int) -> dict:
    """Token logprobs for ``content``; see the module docstring for the layout."""
    prefix = '{"label": "'
    escaped = json.dumps(label_value)[1:-1]
    tokens: list[dict] = []

    def plain(text: str) -> dict:
        return _token(text, 0.0, [{"token": text, "logprob": 0.0, "bytes": list(text.encode())}][:top_n])

    if not content.startswith(prefix + escaped):
        return {"content": [plain(t) for t in _split_rest(content)], "refusal": None}

    groups: dict[str, float] = {}
    for key, p in probs.items():
        if p and p > 0:
            first = label_segments(json.dumps(str(key))[1:-1])[0]
            groups[first] = groups.get(first, 0.0) + float(p)
    ranked = sorted(
        ({"token": seg, "logprob": math.log(p), "bytes": list(seg.encode())} for seg, p in groups.items()),
        key=lambda entry: -entry["logprob"],
    )
    segments = label_segments(escaped)
    tokens.append(plain(prefix))
    first = segments[0]
    own = math.log(groups[first]) if first in groups else 0.0
    tokens.append(_token(first, own, ranked[:top_n]))
    tokens.extend(plain(seg) for seg in segments[1:])
    tokens.extend(plain(t) for t in _split_rest(content[len(prefix) + len(escaped) :]))
    return {"content": tokens, "refusal": None}


CACHE_ROUTING_CHARS = 256  # prompts that start alike share a cache, as OpenAI routes on the prompt's start


def _prompt_text(messages: list) -> str:
    return "".join(
        (m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content")))
        if isinstance(m, dict) else str(m)
        for m in messages
    )  # fmt: skip


def _message_chars(messages: list) -> int:
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message
        total += len(content) if isinstance(content, str) else len(json.dumps(content))
    return total


def _parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """``{field name: (filename or None, raw bytes)}`` for a multipart/form-data body."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + str(boundary).encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        part = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if value:
                part[name.strip()] = value.strip()
        field = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if field:
            fields[str(field)] = (str(filename) if filename else None, data)
    return fields


# --------------------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address, handler, fake: FakeOpenAI):
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request, client_address):  # connection resets during stop() are expected
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self):
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self):
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format, *args):  # quiet by default
        pass

    # -- I/O --------------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any, headers: dict | None = None, content_type: str | None = None):
        if isinstance(payload, bytes):
            body = payload
            content_type = content_type or "application/octet-stream"
        else:
            body = json.dumps(payload).encode()
            content_type = content_type or "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "req_" + _hex())
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json_body(self) -> dict | None:
        raw = self._read_body()
        try:
            data = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            self._send(400, _error_body("We could not parse the JSON body of your request.", "invalid_request_error"))
            return None
        if not isinstance(data, dict):
            self._send(400, _error_body("The request body must be a JSON object.", "invalid_request_error"))
            return None
        return data

    def _not_found(self):
        self._send(
            404,
            _error_body(f"Unknown request URL: {self.command} {self.path}.", "invalid_request_error", "unknown_url"),
        )

    # -- routing ----------------------------------------------------------------------------------------------

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        fake = self.server.fake
        fake._receive(self)
        if path == "/v1/chat/completions":
            body = self._json_body()
            if body is not None:
                fake._handle_chat(self, body)
        elif path == "/v1/files":
            fake._handle_file_upload(self, self._read_body())
        elif path == "/v1/batches":
            body = self._json_body()
            if body is not None:
                self._send(*fake._batch_create(body))
        elif match := re.fullmatch(r"/v1/batches/([^/]+)/cancel", path):
            self._read_body()
            self._send(*fake._batch_cancel(match.group(1)))
        else:
            self._read_body()
            self._not_found()

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        fake = self.server.fake
        fake._receive(self)
        if path == "/_fake/stats":  # not OpenAI's: what the fake was asked and billed, for benchmarks
            self._send(200, fake.stats())
        elif match := re.fullmatch(r"/v1/files/([^/]+)/content", path):
            stored = fake._files_content.get(match.group(1))
            if stored is None:
                self._send(*fake._missing("file", match.group(1)))
            else:
                self._send(200, stored, content_type="application/octet-stream")
        elif match := re.fullmatch(r"/v1/files/([^/]+)", path):
            obj = fake._files.get(match.group(1))
            if obj is None:
                self._send(*fake._missing("file", match.group(1)))
            else:
                self._send(200, obj)
        elif path == "/v1/batches":
            query = urllib.parse.parse_qs(self.path.partition("?")[2])
            self._send(*fake._batch_list(query.get("limit", ["20"])[0], query.get("after", [None])[0]))
        elif match := re.fullmatch(r"/v1/batches/([^/]+)", path):
            self._send(*fake._batch_poll(match.group(1)))
        else:
            self._not_found()

    def do_DELETE(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        fake = self.server.fake
        fake._receive(self)
        if match := re.fullmatch(r"/v1/files/([^/]+)", path):
            with fake._lock:
                obj = fake._files.pop(match.group(1), None)
                fake._files_content.pop(match.group(1), None)
            if obj is None:
                self._send(*fake._missing("file", match.group(1)))
            else:
                self._send(200, {"id": obj["id"], "object": "file", "deleted": True})
        else:
            self._not_found()


# --------------------------------------------------------------------------------------------------------------
# The fake


class FakeOpenAI:
    """A local OpenAI-compatible server; see the module docstring."""

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0):
        self.latency = latency
        self.host = host
        self.port = port
        self.responder: Responder | None = None
        self.judge: Callable[[dict, int], dict | str] = HonestJudge()
        self.requests: list[dict] = []
        self.served: list[tuple[float, float]] = []  # (body read, answer sent) per chat completion, time.time()
        #: The ``usage`` of every chat completion answered over HTTP with a 200: (is a judge request, usage).
        self.usages: list[tuple[bool, dict]] = []
        #: Every HTTP request that reached the server, any endpoint: (method, path, Authorization header).
        self.received: list[tuple[str, str, str | None]] = []
        self.batch_polls_to_complete = 2
        self.batch_faults = False
        #: The body of every batch input line run, in order, and the ``usage`` of each answered with a 200.
        self.batch_lines: list[dict] = []
        self.batch_usages: list[dict] = []
        self.chars_per_token = 4.0  # how ``usage`` counts tokens: characters of the messages / answers over this
        self.prompt_cache = True  # report ``cached_tokens`` for prompt prefixes seen before
        self.n_mode = "honour"  # what ``n > 1`` gets: "honour" (n choices), "refuse" (400) or "ignore" (1 choice)
        self._prompt_prefixes: dict[tuple[str, str], str] = {}  # (model, prompt start) -> the latest such prompt
        self._lock = threading.Lock()
        self._faults: collections.deque[tuple[str, float | None]] = collections.deque()
        self._judge_faults: collections.deque[tuple[str, float | None]] = collections.deque()
        self._calls: dict[str, int] = {}
        self._files: dict[str, dict] = {}
        self._files_content: dict[str, bytes] = {}
        self._batches: dict[str, dict] = {}
        self._batch_polls: dict[str, int] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None and not self.port:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]  # a restart binds the same port again
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- control ----------------------------------------------------------------------------------------------

    def fail_next(self, kind: str, count: int = 1, *, retry_after: float | None = None, judge: bool = False) -> None:
        """Queue faults for the next chat completions; ``judge``: for the next judge requests only."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            (self._judge_faults if judge else self._faults).extend([(kind, retry_after)] * count)

    def pending_faults(self, *, judge: bool = False) -> list[str]:
        with self._lock:
            return [kind for kind, _ in (self._judge_faults if judge else self._faults)]

    def judge_requests(self) -> list[dict]:
        with self._lock:
            return [body for body in self.requests if is_judge_request(body)]

    def chat_requests(self) -> list[dict]:
        with self._lock:
            return list(self.requests)

    def billed(self, *, judge: bool = False, batch: bool = False) -> dict[str, int]:
        """What the teacher's (or the judge's) answered requests reported: ``prompt``, ``cached`` and
        ``completion`` tokens in all, as a provider would bill them; ``batch``: what its batch lines reported."""
        with self._lock:
            usages = list(self.batch_usages) if batch else [u for is_judge, u in self.usages if is_judge == judge]
        return {
            "prompt": sum(u["prompt_tokens"] for u in usages),
            "cached": sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages),
            "completion": sum(u["completion_tokens"] for u in usages),
        }

    def stats(self) -> dict:
        """The teacher's chat completion requests, the choices they asked for and what they were billed; and when
        they were served (``served``: the first body read and the last answer sent, as ``time.time()``, and the
        seconds spent serving them in all, so a client's occupancy of its concurrency can be told)."""
        with self._lock:
            requests = sum(1 for body in self.requests if not is_judge_request(body))
            served = list(self.served)
        timing = {"first": min(r for r, _ in served), "last": max(s for _, s in served),
                  "seconds": sum(s - r for r, s in served)} if served else None  # fmt: skip
        return {"chat_requests": requests, "answers_asked": self.answers_asked(), "billed": self.billed(),
                "served": timing}  # fmt: skip

    def answers_asked(self, *, judge: bool = False) -> int:
        """The choices the teacher's (or the judge's) chat completion requests asked for: the sum of their ``n``."""
        with self._lock:
            return sum(int(b.get("n") or 1) for b in self.requests if is_judge_request(b) == judge)

    def _receive(self, handler: _Handler) -> None:
        with self._lock:
            self.received.append((handler.command, handler.path, handler.headers.get("Authorization")))

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.requests.clear()
            self.served.clear()
            self.usages.clear()
            self.batch_lines.clear()
            self.batch_usages.clear()
            self._faults.clear()
            self._judge_faults.clear()
            self._calls.clear()
            self.responder = None
            self.judge = HonestJudge()
            self.n_mode = "honour"

    # -- chat completions -------------------------------------------------------------------------------------

    def _next_fault(self, body: dict | None = None) -> tuple[str, float | None] | None:
        with self._lock:
            queue = self._judge_faults if body is not None and is_judge_request(body) else self._faults
            return queue.popleft() if queue else None

    def _call_number(self, request: dict, count: int = 1) -> int:
        """The first of ``count`` consecutive call numbers for these messages (one per choice of a request)."""
        key = json.dumps(request.get("messages"), sort_keys=True, default=str)
        with self._lock:
            number = self._calls.get(key, 0)
            self._calls[key] = number + count
        return number

    def _verdict_content(self, body: dict, kind: str | None, number: int) -> str:
        reply = self.judge(body, number)
        content = reply if isinstance(reply, str) else json.dumps(reply)
        if kind == "malformed_json" and '"unsupported_claims": ' in content:
            content = content[: content.index('"unsupported_claims": ') + len('"unsupported_claims": ')]
        return content

    def _call_responder(self, request: dict, number: int) -> dict:
        answer = dict((self.responder or default_responder)(request, number))
        answer.setdefault("rationale", "")
        answer.setdefault("cited_rules", [])
        return answer

    def _validate_chat(self, body: dict) -> tuple[int, dict] | None:
        if not body.get("model"):
            return 400, _error_body("you must provide a model parameter", "invalid_request_error", None, "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error_body("'messages' must be a non-empty array", "invalid_request_error", None, "messages")
        n = body.get("n", 1)
        if n is None:
            n = 1
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
            return 400, _error_body("'n' must be an integer from 1 to 128", "invalid_request_error", None, "n")
        if n > 1 and self.n_mode == "refuse":
            return 400, _error_body("n > 1 is not supported by this server", "invalid_request_error", None, "n")
        return None

    def _complete(self, body: dict, fault: tuple[str, float | None] | None) -> tuple[int, dict, dict]:
        """(status, JSON payload, extra headers) for one chat completion request. Never sleeps."""
        invalid = self._validate_chat(body)
        if invalid:
            return invalid[0], invalid[1], {}
        kind, retry_after = fault if fault else (None, None)
        if kind in HTTP_FAULTS:
            status = HTTP_FAULTS[kind]
            headers = {}
            if kind == "429":
                payload = _error_body("Rate limit reached for requests (fake).", "requests", "rate_limit_exceeded")
                if retry_after is not None:
                    headers["Retry-After"] = f"{retry_after:g}"
            elif kind == "500":
                payload = _error_body("The server had an error while processing your request.", "server_error")
            else:
                payload = _error_body("The engine is currently overloaded, please try again later.", "server_error")
            return status, payload, headers

        n = 1 if self.n_mode == "ignore" else body.get("n") or 1
        want_logprobs = bool(body.get("logprobs"))
        top_n = int(body.get("top_logprobs") or 0)
        choices = []
        completion_chars = 0
        first = self._call_number(body, n)  # the prompt is serialised once per request, not once per choice
        for index in range(n):
            if is_judge_request(body):
                content = self._verdict_content(body, kind, first + index)
                completion_chars += len(content)
                choices.append({"index": index, "finish_reason": "stop", "logprobs": None,
                                "message": {"role": "assistant", "content": content, "refusal": None}})  # fmt: skip
                continue
            answer = self._call_responder(body, first + index)
            label = str(answer["label"])
            rules = list(answer.get("cited_rules") or [])
            rationale = str(answer.get("rationale") or "")
            probs = answer.get("probs") or {label: 1.0}
            if kind == "bad_label":
                label, probs = BAD_LABEL, {BAD_LABEL: 1.0}
            elif kind == "bad_rule":
                rules = [BAD_RULE]
            elif kind == "empty_rationale":
                rationale = ""
            content = json.dumps({"label": label, "rationale": rationale, "cited_rules": rules})
            if kind == "malformed_json":
                content = content[: content.index('"rationale": ') + len('"rationale": ')]
            completion_chars += len(content)
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "finish_reason": "stop",
                    "logprobs": _logprobs_for(content, label, probs, top_n) if want_logprobs else None,
                }
            )
        prompt_tokens = max(1, int(_message_chars(body["messages"]) / self.chars_per_token))
        completion_tokens = max(1, int(completion_chars / self.chars_per_token))
        cached_tokens = min(prompt_tokens, int(self._cached_prefix_chars(body) / self.chars_per_token))
        payload = {
            "id": "chatcmpl-" + _hex(29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            },
        }
        return 200, payload, {}

    def _cached_prefix_chars(self, body: dict) -> int:
        """How many characters of this prompt the fake's prompt cache holds (see "Token counts")."""
        if not self.prompt_cache:
            return 0
        text = _prompt_text(body["messages"])
        slot = (body["model"], text[:CACHE_ROUTING_CHARS])
        with self._lock:
            earlier = self._prompt_prefixes.get(slot, "")
            self._prompt_prefixes[slot] = text
        return _common_prefix_length(earlier, text)

    def _handle_chat(self, handler: _Handler, body: dict) -> None:
        received = time.time()
        try:
            self._answer_chat(handler, body)
        finally:
            with self._lock:
                self.served.append((received, time.time()))

    def _answer_chat(self, handler: _Handler, body: dict) -> None:
        with self._lock:
            self.requests.append(body)
        invalid = self._validate_chat(body)
        if invalid:  # a malformed request does not use up a queued fault
            handler._send(*invalid)
            return
        fault = self._next_fault(body)
        if fault and fault[0] == "timeout":
            self._stopping.wait(TIMEOUT_HOLD_SECONDS)
            handler.close_connection = True  # drop without an answer
            return
        if self.latency > 0:
            time.sleep(self.latency)
        status, payload, headers = self._complete(body, fault)
        if status == 200:
            with self._lock:
                self.usages.append((is_judge_request(body), payload["usage"]))
        handler._send(status, payload, headers)

    # -- files ------------------------------------------------------------------------------------------------

    def _missing(self, what: str, ident: str) -> tuple[int, dict]:
        return 404, _error_body(f"No such {what}: '{ident}'.", "invalid_request_error", None, "id")

    def _store_file(self, data: bytes, filename: str, purpose: str) -> dict:
        obj = {
            "id": "file-" + _hex(),
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }
        with self._lock:
            self._files[obj["id"]] = obj
            self._files_content[obj["id"]] = data
        return obj

    def _handle_file_upload(self, handler: _Handler, raw: bytes) -> None:
        try:
            fields = _parse_multipart(raw, handler.headers.get("Content-Type") or "")
        except ValueError as exc:
            handler._send(400, _error_body(str(exc), "invalid_request_error"))
            return
        if "file" not in fields or "purpose" not in fields:
            handler._send(400, _error_body("'file' and 'purpose' are required", "invalid_request_error"))
            return
        filename, data = fields["file"]
        purpose = fields["purpose"][1].decode("utf-8", "replace")
        handler._send(200, self._store_file(data, filename or "upload", purpose))

    # -- batches ----------------------------------------------------------------------------------------------

    def _batch_create(self, body: dict) -> tuple[int, dict]:
        file_id = body.get("input_file_id")
        if body.get("endpoint") != "/v1/chat/completions":
            return 400, _error_body(
                "Only /v1/chat/completions is supported.", "invalid_request_error", None, "endpoint"
            )
        if body.get("completion_window") != "24h":
            return 400, _error_body("completion_window must be '24h'.", "invalid_request_error")
        if file_id not in self._files:
            return 400, _error_body(f"No such file: '{file_id}'.", "invalid_request_error", None, "input_file_id")
        lines = [line for line in self._files_content[file_id].decode("utf-8", "replace").splitlines() if line.strip()]
        now = int(time.time())
        batch = {
            "id": "batch_" + _hex(),
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self._batches[batch["id"]] = batch
            self._batch_polls[batch["id"]] = 0
        if self.batch_polls_to_complete <= 0:
            self._batch_run(batch)
        return 200, dict(batch)

    def _batch_list(self, limit: str, after: str | None) -> tuple[int, dict]:
        """Newest first, ``limit`` (1–100) per page, ``after`` a batch id of the previous page."""
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return 400, _error_body("limit must be between 1 and 100.", "invalid_request_error", None, "limit")
        with self._lock:
            newest_first = [dict(batch) for batch in reversed(self._batches.values())]
        if after is not None:
            ids = [batch["id"] for batch in newest_first]
            if after not in ids:
                return self._missing("batch", after)
            newest_first = newest_first[ids.index(after) + 1 :]
        page = newest_first[: int(limit)]
        return 200, {
            "object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(newest_first) > len(page),
        }  # fmt: skip

    def _batch_poll(self, batch_id: str) -> tuple[int, dict]:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return self._missing("batch", batch_id)
            if batch["status"] in ("finalizing", "completed", "cancelled", "failed", "expired"):
                return 200, dict(batch)
            self._batch_polls[batch_id] += 1
            polls = self._batch_polls[batch_id]
            if polls < self.batch_polls_to_complete:
                batch["status"] = "in_progress"
                batch["in_progress_at"] = batch["in_progress_at"] or int(time.time())
                return 200, dict(batch)
            batch["status"] = "finalizing"  # concurrent polls see this while the lines run
        self._batch_run(batch)
        return 200, dict(batch)

    def _batch_run(self, batch: dict) -> None:
        lines = self._files_content[batch["input_file_id"]].decode("utf-8", "replace").splitlines()
        outputs, errors = [], []
        for line in lines:
            if not line.strip():
                continue
            custom_id = None
            try:
                item = json.loads(line)
                custom_id = item.get("custom_id")
                if item.get("url") != "/v1/chat/completions" or not isinstance(item.get("body"), dict):
                    raise ValueError("each line needs url /v1/chat/completions and a body object")
            except (ValueError, AttributeError) as exc:
                errors.append(
                    {
                        "id": "batch_req_" + _hex(),
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": "invalid_request", "message": str(exc)},
                    }
                )
                continue
            fault = self._next_fault() if self.batch_faults else None
            record = {"id": "batch_req_" + _hex(), "custom_id": custom_id, "response": None, "error": None}
            if fault and fault[0] == "timeout":
                record["error"] = {"code": "request_timeout", "message": "The request timed out."}
                errors.append(record)
                continue
            with self._lock:
                self.batch_lines.append(item["body"])
            status, payload, _headers = self._complete(item["body"], fault)
            if status == 200:
                with self._lock:
                    self.batch_usages.append(payload["usage"])
            record["response"] = {"status_code": status, "request_id": "req_" + _hex(), "body": payload}
            (outputs if status == 200 else errors).append(record)

        def jsonl(records: list[dict]) -> bytes:
            return "".join(json.dumps(r) + "\n" for r in records).encode()

        now = int(time.time())
        output_file = self._store_file(jsonl(outputs), f"{batch['id']}_output.jsonl", "batch_output")
        error_file = self._store_file(jsonl(errors), f"{batch['id']}_error.jsonl", "batch_output") if errors else None
        with self._lock:
            batch.update(
                status="completed",
                in_progress_at=batch["in_progress_at"] or now,
                finalizing_at=now,
                completed_at=now,
                output_file_id=output_file["id"],
                error_file_id=error_file["id"] if error_file else None,
                request_counts={"total": len(outputs) + len(errors), "completed": len(outputs), "failed": len(errors)},
            )

    def _batch_cancel(self, batch_id: str) -> tuple[int, dict]:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return self._missing("batch", batch_id)
            if batch["status"] not in ("finalizing", "completed", "cancelled", "failed", "expired"):
                now = int(time.time())
                batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
            return 200, dict(batch)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI-compatible API until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept before each chat completion")
    parser.add_argument("--batch-polls", type=int, default=2, help="GETs before a batch completes")
    parser.add_argument("--invent-facts", type=float, default=0.0, help="share of answers that invent a fact")
    parser.add_argument("--behaviour", choices=sorted(BEHAVIOURS), default="", help="how the teacher answers")
    parser.add_argument("--n-mode", choices=("honour", "refuse", "ignore"), default="honour", help="what n > 1 gets")
    args = parser.parse_args(argv)
    server = FakeOpenAI(latency=args.latency, host=args.host, port=args.port)
    server.n_mode = args.n_mode
    server.batch_polls_to_complete = args.batch_polls
    if args.behaviour:
        server.responder = BEHAVIOURS[args.behaviour]()
    if args.invent_facts:
        server.responder = InventingResponder(fraction=args.invent_facts)
    server.start()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill <pid>` stops it as cleanly as Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)  # even when started in the background, which ignores SIGINT
    try:  # the announcement inside: a signal sent as soon as it is read must not land outside the handler
        print(f"Fake OpenAI server on {server.base_url} (latency {args.latency:g} s); Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
