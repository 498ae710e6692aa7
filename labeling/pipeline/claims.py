"""Claim grounding: the factual claims a rationale makes about the member or the job, and whether the pair's own
text supports each one (the ``facts_grounded`` trust check).

A **claim** is a number with a unit (years of experience, team sizes, salaries, percentages, a year:
:mod:`.claim_numbers`), a degree, a certificate or licence, a seniority level or title, a skill or tool of the
lexicon (:mod:`.claim_words`) or listed beside one ("Triage, emergency care and intubation"), a work mode, or a
name: a capitalised word or run of words, an acronym, a mixed-case or dotted token (PyTorch, Node.js, S3). A claim
is **grounded** when the text of this member and this job (every field) contains all its words after
normalisation: folded to ASCII, lower-cased, stemmed, and spelled the canonical way of a small synonym table
(Postgres is PostgreSQL, k8s is Kubernetes, ICU is intensive care, MSc is a master's); an acronym also by the
initials of a phrase ("SDR", "sales development representative"). Numbers are compared as numbers within their
unit: "5+ years" is supported by "at least 5 years" or "5 years", "4 years" by "3-5 years", "€60k" by "60,000 EUR",
"eight years" by "8 years". Words of the policy (the run's system prompt), its label keys and rule IDs are not
claims, except seniority levels (policies list them; a rationale naming one speaks of the pair), nor are the
rationale's own counts ("2 of 3 required skills", "score 0.75"). A capitalised word opening a sentence is a name
only when known or followed by another name, since every sentence opens with a capital.

What this cannot see: a job's requirement attributed to the member (both are "this pair"), and a lower-case skill
that is neither in the lexicon nor listed beside a named one.

Libraries: PyStemmer (Snowball's English stemmer compiled to C: light inflection, "nurses"/"nursing" -> "nurs",
with no data to download, ~0.1 µs a word) and anyascii (transliteration of any script to ASCII from a table in
the package, so "Zoë", "São Paulo" and "北京" match "Zoe", "Sao Paulo" and "Beijing"). No tagger or model:
spaCy's and nltk's need weights fetched from a hub. No fuzzy matching (rapidfuzz): it would ground near-miss
hallucinations (Java for JavaScript), and teachers rarely misspell.

Cost: a pair's text is normalised once (cached by its content), the policy's once per run (cached by prompt);
``bench/grounding.py`` measures the cost per rationale.
"""

import functools
import re
from dataclasses import dataclass

from anyascii import anyascii

from . import claim_text
from . import claim_words as words
from .claim_numbers import Quantity, quantities, supported
from .claim_text import LEXICON, POSSESSIVE, Token, canonical, canonical_set, phrase_table, stems

_ACRONYM = re.compile(r"[A-Z]{2,6}")
_MEMBER_FIELDS = ("member_id", "headline", "summary", "skills", "seniority", "location")
_JOB_FIELDS = ("job_id", "title", "description", "required_skills", "seniority", "location")

_DEGREES = canonical_set(words.DEGREE_WORDS)
_GENERIC_DEGREE = canonical(stems("degree"))[0]
_NOT_CONTENT = canonical_set(words.COMMON | words.FUNCTION_WORDS | words.NAME_JOINERS) - _DEGREES
_META = canonical_set(words.META)
_ROLE_NOUNS = canonical_set(words.ROLE_NOUNS)
_ROLE_RANKS = canonical_set(words.ROLE_RANKS)
_PLACES = phrase_table(words.PLACES)
_ORGANISATIONS = phrase_table(words.ORGANISATIONS)
_ORG_ENDINGS = canonical_set(words.ORGANISATION_ENDINGS)
_ORG_CUES = words.ORGANISATION_CUES
_COMMON = {w.lower() for w in words.COMMON | words.META}
_CREDENTIAL_KEYS = canonical_set(words.CREDENTIAL_WORDS)
_LEXICON_HEADS = {key[0] for key in LEXICON} | _ROLE_RANKS
_LIST_WORDS = {"and", "or", "but", "plus", "nor", "including", "not", "no"}
_RANK_WORDS = {w.split()[0] for w in words.RANKS} | {
    surface.split()[0] for surface, meaning in words.SYNONYMS.items() if meaning in words.RANKS
}


@dataclass(frozen=True, slots=True)
class Claim:
    text: str  # as the rationale wrote it
    kind: str  # number, degree, credential, seniority, skill, location, organisation, name
    keys: tuple[str, ...] = ()  # canonical stems that must all be in the pair's text
    words: tuple[str, ...] = ()  # its content words, folded and lower-case (to compare with the policy's)
    quantity: Quantity | None = None  # numbers

    def describe(self) -> str:
        return f"{self.text} ({self.kind})"


def _is_content(token: Token) -> bool:
    return token.folded[:1].isalpha() and token.key not in _NOT_CONTENT and token.key not in _META


def _name_like(tokens: list[Token], i: int) -> bool:
    """A capitalised word, an acronym, a mixed-case or dotted token; at a sentence's start only a known name or
    the first word of a run of them ("Deutsche Bank ..."), since any word starts a sentence with a capital."""
    token = tokens[i]
    word = token.folded.lstrip(".")
    if len(word) < 2 or word[0].isdigit() or token.key in _META:
        return False
    if word.isupper():
        return word.lower() not in words.FUNCTION_WORDS
    if any(c.isupper() for c in word[1:]) or token.text.startswith("."):
        return True
    if not word[0].isupper() or word.lower() in _COMMON:
        return False
    if not token.opens_sentence:
        return True
    after = i + 1 < len(tokens) and not tokens[i + 1].opens_sentence and not _lexicon_match(tokens, i + 1)[0]
    return (after and _name_like(tokens, i + 1)) or (token.key,) in _PLACES or (token.key,) in _ORGANISATIONS


def _name_kind(tokens: list[Token], i: int, j: int) -> str:
    raw = tuple(t.key for t in tokens[i:j])
    if raw in _PLACES:
        return "location"
    cue = tokens[i - 1].folded.lower() if i else ""
    if raw in _ORGANISATIONS or raw[-1] in _ORG_ENDINGS or cue in _ORG_CUES:
        return "organisation"
    return "name"


def _is_title(tokens: list[Token], i: int) -> bool:
    """A rank as a word of its own, not a form of it ("seniority", "managed") nor a "hiring manager"."""
    before = tokens[i - 1].folded.lower() if i else ""
    word = tokens[i].folded.lower()
    return (word in _RANK_WORDS or word.removesuffix("s") in _RANK_WORDS) and before not in words.NOT_A_TITLE_BEFORE


def _lexicon_match(tokens: list[Token], i: int) -> tuple[str, int]:
    """(kind, length) of the lexicon entry starting at token i, or ("", 0)."""
    if tokens[i].key not in _LEXICON_HEADS:
        return "", 0
    for length in range(min(3, len(tokens) - i), 0, -1):
        kind = LEXICON.get(tuple(t.key for t in tokens[i : i + length]))
        if kind and (length == 1 or not any(t.opens_sentence for t in tokens[i + 1 : i + length])):
            if kind == "seniority" and not _is_title(tokens, i):
                return "", 0
            return kind, length
    key, after = tokens[i].key, tokens[i + 1].key if i + 1 < len(tokens) else ""
    if key in _ROLE_RANKS and (after in _ROLE_NOUNS or (key == "lead" and i and tokens[i - 1].key in ("tech", "team"))):
        return "seniority", 2 if key == "head" else 1
    if key == "head" and after == "of":
        return "seniority", 2
    return "", 0


def _extend(tokens: list[Token], i: int, j: int) -> tuple[int, int]:
    """A degree's or credential's subject: up to two content words before it ("nursing licence") and up to three
    after "in"/"of" ("MSc in Data Science", "Bachelor of Science")."""
    while i > 0 and j - i < 3 and not tokens[i].opens_sentence and _is_content(tokens[i - 1]):
        i -= 1
    if j < len(tokens) and tokens[j].folded.lower() in ("in", "of") and not tokens[j].opens_sentence:
        end = j + 1
        while end < len(tokens) and end - j <= 3 and not tokens[end].opens_sentence and _is_content(tokens[end]):
            end += 1
        j = end if end > j + 1 else j
    return i, j


def _claim(text: str, tokens: list[Token], i: int, j: int, kind: str) -> Claim | None:
    span = tokens[i:j]
    everything = canonical([t.key for t in span])
    keys = tuple(k for k in everything if k not in _NOT_CONTENT and k not in _META)
    if not keys and kind not in ("degree", "credential", "seniority"):
        return None
    keys = keys or tuple(everything)
    if kind == "credential" and any(t.folded[:1].isupper() and t.key not in _CREDENTIAL_KEYS for t in span):
        keys = tuple(k for k in keys if k not in _CREDENTIAL_KEYS) or keys  # "18th Edition qualification"
    surface = tuple(t.folded.lower().removesuffix("s") for t in span if _is_content(t)) or (span[0].folded.lower(),)
    return Claim(text[span[0].start : span[-1].end], kind, keys, surface)


def _marked_spans(tokens: list[Token]) -> list[tuple[int, int, str]]:
    """Lexicon entries (with a degree's or credential's subject) and runs of names, left to right."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        kind, length = _lexicon_match(tokens, i)
        if kind:
            start, end = _extend(tokens, i, i + length) if kind in ("degree", "credential") else (i, i + length)
            while spans and spans[-1][1] > start:  # the subject of a degree may hold a skill already claimed
                start = min(start, spans.pop()[0])
            spans.append((start, end, kind))
            i = end
        elif _name_like(tokens, i):
            end = i + 1
            while end < len(tokens) and not tokens[end].opens_sentence and not tokens[end].listed:
                joiner = tokens[end].folded.lower() in words.NAME_JOINERS and end + 1 < len(tokens)
                if _lexicon_match(tokens, end)[0] or not (
                    _name_like(tokens, end) or (joiner and _name_like(tokens, end + 1))
                ):
                    break
                end += 1
            spans.append((i, end, _name_kind(tokens, i, end)))
            i = end
        else:
            i += 1
    return spans


def _list_items(tokens: list[Token], spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Skills listed with a named skill, credential or name ("SQL and dbt", "CT, X-ray and ultrasound"): in a clause
    with an item that is only such a claim, every other item of at most three content words (and a generic noun:
    "intubation skills") is a skill claim too."""
    skills = {i for start, end, kind in spans if kind in ("skill", "name", "credential") for i in range(start, end)}
    claimed = {index for start, end, _ in spans for index in range(start, end)}
    found: list[tuple[int, int, str]] = []
    items: list[tuple[int, int]] = []
    start = 0
    for index in range(len(tokens) + 1):
        end_of_clause = index == len(tokens) or tokens[index].opens_sentence
        separator = not end_of_clause and tokens[index].folded.lower() in _LIST_WORDS
        if end_of_clause or separator or tokens[index].listed:
            if start < index:
                items.append((start, index))
            start = index + 1 if separator else index
        if end_of_clause:
            if any(_only_skills(tokens, s, e, skills) for s, e in items):
                found += [(s, e, "skill") for s, e in items
                          if claimed.isdisjoint(range(s, e)) and _is_listed_skill(tokens[s:e])]  # fmt: skip
            items = []
    return found


def _only_skills(tokens: list[Token], start: int, end: int, skills: set[int]) -> bool:
    indices = range(start, end)
    return any(i in skills for i in indices) and all(i in skills or tokens[i].key in _NOT_CONTENT for i in indices)


def _is_listed_skill(item: list[Token]) -> bool:
    core = [t for t in item if _is_content(t)]
    if not core or len(item) > 4 or len(core) > 3:
        return False
    first, last = item.index(core[0]), item.index(core[-1])
    return all(_is_content(t) for t in item[first : last + 1])


def _word_claims(text: str) -> list[Claim]:
    tokens = claim_text.tokens(text)
    spans = _marked_spans(tokens)
    spans += _list_items(tokens, spans)
    return [c for c in (_claim(text, tokens, s, e, kind) for s, e, kind in sorted(spans)) if c]


@functools.lru_cache(maxsize=1024)
def extract(rationale: str) -> tuple[Claim, ...]:
    """Every claim of a rationale about the member or the job (before grounding), numbers first."""
    numbers = [Claim(q.text, "number", quantity=q) for q in quantities(rationale, stated_only=True)]
    return (*numbers, *_word_claims(rationale))


# -- grounding ----------------------------------------------------------------------------------------------------


class Grounds:
    """What a text supports: its canonical word stems, its numbers and the initials of its phrases (an acronym
    of them is grounded: "SDR" by "sales development representative"; worked out only when an acronym asks)."""

    def __init__(self, text: str):
        self.text = text
        self.keys = set(canonical(stems(text)))
        if self.keys & _DEGREES:
            self.keys.add(_GENERIC_DEGREE)
        self.quantities = tuple(quantities(text, stated_only=False))

    @functools.cached_property
    def initials(self) -> frozenset[str]:
        firsts = [t[0] for t in (anyascii(w).lower() for w in re.findall(r"[^\W_]+", self.text)) if t]
        return frozenset("".join(firsts[i : i + n]) for n in range(2, 6) for i in range(len(firsts) - n + 1))

    def supports(self, claim: Claim) -> bool:
        if claim.quantity:
            return supported(claim.quantity, self.quantities)
        if all(key in self.keys for key in claim.keys):
            return True
        return bool(_ACRONYM.fullmatch(claim.text)) and claim.text.lower() in self.initials


text_grounds = functools.lru_cache(maxsize=512)(Grounds)  # a pair's K answers are checked together


def _field(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def pair_grounds(member: dict, job: dict) -> Grounds:
    """What this member and this job support: every field of both (cached by their text)."""
    parts = [_field(member.get(f)) for f in _MEMBER_FIELDS] + [_field(job.get(f)) for f in _JOB_FIELDS]
    return text_grounds("\n".join(parts))


@dataclass(frozen=True, slots=True)
class PolicyWords:
    """The words of a policy (its system prompt), its label keys and rule IDs. A claim made only of them is the
    policy speaking, not a fact about the pair, except a seniority level: policies list the levels ("junior,
    mid, senior"), and a rationale naming one speaks of the member or the job."""

    words: frozenset[str]
    quantities: tuple[Quantity, ...]

    def covers(self, claim: Claim) -> bool:
        if claim.quantity:
            return supported(claim.quantity, self.quantities)
        return claim.kind != "seniority" and all(word in self.words for word in claim.words)


@functools.lru_cache(maxsize=64)
def policy_words(system_prompt: str, labels: tuple[str, ...], rule_ids: tuple[str, ...]) -> PolicyWords:
    text = "\n".join([system_prompt, *labels, *rule_ids])
    folded = anyascii(POSSESSIVE.sub("", text)).lower()
    found = {w.removesuffix("s") for w in re.findall(r"[a-z0-9]+(?:[+#]+|(?:\.[a-z0-9]+)+)?", folded)}
    return PolicyWords(
        frozenset(found | {label.lower() for label in labels}), tuple(quantities(text, stated_only=False))
    )


def ungrounded(rationale: str, *, member: dict, job: dict, policy: PolicyWords) -> list[Claim]:
    """The claims of ``rationale`` that neither this member's and job's text supports nor the policy's words
    make, each once (the pair's text is only read when the rationale claims something)."""
    found: dict[str, Claim] = {}
    made = extract(rationale)
    grounds = pair_grounds(member, job) if made else None
    for claim in made:
        if not grounds.supports(claim) and not policy.covers(claim):
            found.setdefault(claim.describe().lower(), claim)
    return list(found.values())
