"""Text aimed at a model, planted in member and job data (prompt injection), and answers that obey it.

:func:`scan_text` finds, in one field's text, what is written for a model or a labeler rather than for a person:
"ignore/disregard … instructions" (in English, German, French, Spanish, Portuguese, Italian, Dutch, Russian,
Chinese and Japanese), role markers (``system:``, ``<|im_start|>``, ``[INST]``, a closing ``</job>`` tag …),
imperatives to the model ("label this pair as …", "note to the AI", "you are now …"), output-format
instructions (``"label": …``) and, when the policy is known, its label keys and rule IDs. Before matching, the text
is folded: zero-width characters and soft hyphens are dropped, letters are transliterated to ASCII with
``anyascii`` (so Cyrillic or Greek homoglyphs read as the Latin letters they imitate, and accents go), case is
ignored, and letters spaced out one by one ("i g n o r e") are read joined up. Every match keeps its span in the
original text, so a reviewer sees exactly what was flagged.

A pair with a match is routed to review (``suspected_injection``) and never auto-accepted. On the output side,
:func:`follows_data_instructions` fails an answer that defers to instructions in the data, or gives the label the
planted text asked for. The scan runs on import (reported on the import, see ``services.imports``) and on every
answer's pair when a run decides its candidates (with the policy's labels and rules).
"""

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache

from anyascii import anyascii
from confusable_homoglyphs import confusables

#: Member and job fields that are free text (scanned); lists are scanned item by item.
MEMBER_TEXT = ("headline", "summary", "location", "skills")
JOB_TEXT = ("title", "description", "location", "required_skills")

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
                               "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\ufeff"))  # fmt: skip
_WORDS = r"(?:[\w'’]+[ \t,]+){0,4}?"  # up to four words between the verb and its object
_OBJECT = r"(?:instructions?|rules?|prompts?|polic(?:y|ies)|guidelines?|directions?|directives?|guardrails?)\b"
_GAP = r"[^.\n!?]{0,40}?"  # a few words of the same sentence
#: (kind, trigger substrings of the folded text, pattern): a pattern runs only on a text holding one of its triggers.
_LATIN = [
    ("ignore_instructions", ("ignor", "disregard", "forget", "overrid", "bypass"),
     r"\b(?:ignore|disregard|forget|override|bypass)\s+" + _WORDS + _OBJECT),
    ("ignore_instructions", ("ignorier", "vergiss", "missacht"),
     r"\b(?:ignorier\w*|vergiss|missachte\w*)\s+" + _WORDS + r"(?:anweisung\w*|regeln|vorgaben)\b"),
    ("ignore_instructions", ("ignore", "oubli"),
     r"\b(?:ignore[rz]?|oublie[rz]?)\s+" + _WORDS + r"(?:instructions|consignes|regles)\b"),
    ("ignore_instructions", ("ignora", "olvid", "esquec", "dimentic"),
     r"\b(?:ignora\w*|olvida\w*|esquec\w*|dimentica\w*)\s+" + _WORDS
     + r"(?:instrucciones|instrucoes|istruzioni|reglas|regras|regole)\b"),
    ("ignore_instructions", ("negeer", "vergeet"), r"\b(?:negeer|vergeet)\s+" + _WORDS + r"(?:instructies|regels)\b"),
    ("role_marker", ("system", "assistant", "developer"),
     r"(?:^|[\n\r])[ \t>*#\-]*(?:system|assistant|developer)[ \t]*(?::|>>)"),
    ("role_marker", ("<|",), r"<\|\s*(?:im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\s*\|>"),
    ("role_marker", ("inst]", "<<", "##"), r"\[/?inst\]|<<\s*/?sys\s*>>|#{2,}\s*(?:instruction|system|response)\b"),
    ("role_marker", ("</", "<system", "<assistant", "<instruction", "<member", "<job", "<policy"),
     r"</?\s*(?:system|assistant|instructions?|member|job|policy)\s*>"),
    ("role_marker", ("system prompt", "system message", "system instruction"),
     r"\b(?:new|updated|real|actual|begin|end of)\s+(?:the\s+)?system\s+(?:prompt|message|instructions?)\b"),
    ("model_directive", ("you are now", "from now on", "act as", "pretend to be"),
     r"\b(?:you are now|from now on,? you|act as|pretend to be)\b" + _GAP
     + r"\b(?:ai|model|assistant|labell?er|annotator|bot|gpt|llm)\b"),
    ("model_directive", (" to the ", " for the ", " to any ", " to ai", " for ai"),
     r"\b(?:notes?|messages?|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:ai|model|llm|assistant|labell?er"
     r"|annotators?|reviewers?|gpt|chatgpt|screening\s+(?:bot|tool|system|model))\b"),
    ("model_directive", ("dear ", "hey ", "hi ", "attention"),
     r"\b(?:dear|hey|hi|attention)\s+(?:the\s+)?(?:ai|llm|chatgpt|gpt|claude|labell?er|annotator)\b"),
    ("model_directive", ("label ", "rate ", "classify", "mark ", "score ", "grade ", "categori"),
     r"\b(?:label|rate|classify|mark|score|grade|categori[sz]e)\s+(?:this|the|my|each|every)\s+(?:pair|candidate|"
     r"profile|match|applicant|application|member|posting|job)\b" + _GAP + r"\bas\s+(?P<label>[a-z][\w\- ]{0,30})"),
    ("model_directive", ("label is", "label =", "label:", "answer is", "classification is", "rating is"),
     r"\bthe\s+(?:correct|right|only|true|final|expected)\s+(?:label|answer|classification|rating)\s+(?:is|=|:)\s*"
     r"(?P<label>[a-z][\w\- ]{0,30})"),
    ("model_directive", ("as an ai", "as a language model", "as an llm", "as a large language"),
     r"\bas an? (?:ai|language model|llm|large language model)\b"),
    ("output_format", ("label", "rationale", "cited_rules"),
     r"[{,]\s*[\"']?(?:label|rationale|cited_rules)[\"']?\s*:\s*[\"'\[]?(?P<label>[a-z][\w\-]*)?"),
    ("output_format", ("respond", "reply", "answer", "output", "return"),
     r"\b(?:respond|reply|answer|output|return)\s+(?:only\s+)?(?:with|in)\s+(?:the\s+)?(?:json|label|word)\b"),
]  # fmt: skip
_NATIVE = [  # matched against the original text (lower case): scripts the folding would spell out
    ("ignore_instructions", r"(?:игнорируй\w*|забудь\w*|не\s+обращай\w*)[^.\n]{0,40}?(?:инструкци|правил|указани)\w*"),
    ("ignore_instructions", r"(?:忽略|无视|無視|忘记|忘記|忽視)[^。\n]{0,20}?(?:指令|指示|规则|規則|提示|说明)"),
    ("ignore_instructions", r"(?:指示|命令|ルール|規則)[^。\n]{0,20}?(?:無視|忘れ)"),
]
_LATIN_RE = [(kind, triggers, re.compile(pattern)) for kind, triggers, pattern in _LATIN]
#: Any trigger of any pattern: one search tells a text that no pattern needs to run on (most texts).
_ANY_TRIGGER = re.compile("|".join(re.escape(t) for _, triggers, _ in _LATIN for t in triggers))
_NATIVE_RE = [(kind, re.compile(pattern)) for kind, pattern in _NATIVE]
#: Letters spaced out one by one: "i g n o r e   a l l".
_SPACED = re.compile(r"(?:\b[a-z][ .\-_*|]{1,3}){5,}[a-z]\b")
_SPACED_HINT = re.compile(r"[a-z][ .*_|-]{1,3}[a-z][ .*_|-]{1,3}[a-z][ .*_|-]{1,3}[a-z][ .*_|-]{1,3}[a-z]")
_SPACED_WORDS = re.compile(r"ignore|disregard|instructions|systemprompt|labelthis|correctlabel|assistant")
_DEFERS = re.compile(
    r"\b(?:as (?:instructed|requested|directed|asked|told)|per the (?:instructions?|note|request)|following the "
    r"(?:instructions?|note|request)|(?:instructions?|note|request) (?:in|from|inside) the (?:job|posting|profile|"
    r"description|summary|headline|data|member)|the (?:job|posting|profile|description|member|candidate|data|"
    r"summary|headline) (?:says|asks|instructs|tells|requests|wants) (?:me |us )?to (?:label|rate|classify|mark|"
    r"answer|return|choose))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Match:
    kind: str  # ignore_instructions | role_marker | model_directive | output_format | policy_term
    field: str  # e.g. "job.description"
    start: int  # span in the field's original text
    end: int
    text: str  # the original text of the span
    label: str = ""  # the policy label the text asks for, when it names one

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Folded:
    text: str
    origin: list[int] | None  # index in the original text of each folded character (None: the same index)

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end - 1] + 1


def fold(text: str) -> _Folded:
    """The text as the patterns read it: no invisible characters, ASCII letters, lower case."""
    if text.isascii():
        return _Folded(text.lower(), None)
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if ord(char) in _INVISIBLE or unicodedata.category(char) == "Cf":
            continue
        plain = char if char.isascii() else _latin(char)
        for piece in plain.lower():
            chars.append(piece)
            origin.append(index)
    return _Folded("".join(chars), origin)


@lru_cache(maxsize=4096)
def _latin(char: str) -> str:
    """A non-ASCII character as the ASCII it looks like (a Cyrillic "с" is a "c": Unicode's confusables, from
    ``confusable_homoglyphs``), else as ``anyascii`` spells it ("ë" is "e"); NFKC first (fullwidth, math letters)."""
    normal = unicodedata.normalize("NFKC", char)
    if normal.isascii():
        return normal
    spelled = anyascii(normal)
    found = confusables.is_confusable(normal, greedy=True, preferred_aliases=["latin"]) if len(normal) == 1 else False
    looks = [g["c"] for entry in found or () for g in entry["homoglyphs"] if g["c"].isascii() and g["c"].isalpha()]
    if not looks:
        return spelled
    if spelled in looks:
        return spelled
    same_case = [c for c in looks if c.isupper() == normal.isupper()]
    if not same_case and len(spelled) == 1 and spelled.isalpha():
        return spelled  # Unicode maps "І" to "l" only, which is not what a capital I reads as
    return (same_case or looks)[0]


@lru_cache(maxsize=256)
def _policy_patterns(labels: tuple[str, ...], rule_ids: tuple[str, ...]) -> re.Pattern | None:
    """The policy's label keys (those unlikely in prose: with an underscore or a digit) and rule IDs."""
    keys = [re.escape(label.lower()) for label in labels if "_" in label or any(c.isdigit() for c in label)]
    rules = [re.escape(rule.lower()) for rule in rule_ids]
    terms = keys + [rf"(?:rule\s+)?{rule}" for rule in rules]
    return re.compile(r"\b(?:" + "|".join(terms) + r")\b") if terms else None


def _requested(found: str, labels: tuple[str, ...]) -> str:
    """The policy label a matched instruction asks for ("" when it names none of them)."""
    words = re.sub(r"[\s\-]+", "_", found.strip().lower())
    for label in labels:
        if words == label.lower() or words.startswith(label.lower() + "_") or words.startswith(label.lower()):
            return label
    return ""


def scan_text(text: str, field: str, *, labels: tuple[str, ...] = (), rule_ids: tuple[str, ...] = ()) -> list[Match]:
    """Every span of ``text`` aimed at a model (see the module docstring), in order of position."""
    return scan_fields([(field, text)], labels=labels, rule_ids=rule_ids)


def scan_fields(fields: list[tuple[str, str]], *, labels=(), rule_ids=()) -> list[Match]:
    """The matches in several texts ((field name, text) pairs). The texts are searched together first for the
    words each pattern needs, so a clean pair costs one pass over its text, not one per pattern and field."""
    folded = [(field, text, fold(text)) for field, text in fields if text]
    joined = "\n".join(f.text for _, _, f in folded)
    active = (
        [(kind, pattern) for kind, triggers, pattern in _LATIN_RE if any(t in joined for t in triggers)]
        if _ANY_TRIGGER.search(joined)
        else []
    )
    spaced = _SPACED_HINT.search(joined) is not None
    native = any(f.origin is not None for _, _, f in folded)
    terms = tuple(labels) + tuple(rule_ids)
    policy = _policy_patterns(tuple(labels), tuple(rule_ids)) if any(t.lower() in joined for t in terms) else None
    if not (active or spaced or native or policy):
        return []
    matches: list[Match] = []
    for field, text, fold_of in folded:
        found: dict[tuple[int, int], Match] = {}

        def add(kind: str, span: tuple[int, int], label: str = "", field=field, text=text, found=found) -> None:
            start, end = span
            found.setdefault((start, end), Match(kind, field, start, end, text[start:end], label))

        for kind, pattern in active:
            for m in pattern.finditer(fold_of.text):
                asked = m.groupdict().get("label") or ""
                add(kind, fold_of.span(*m.span()), _requested(asked, labels) if asked else "")
        if fold_of.origin is not None:
            for kind, pattern in _NATIVE_RE:
                for m in pattern.finditer(text.lower()):
                    add(kind, m.span())
        for m in _SPACED.finditer(fold_of.text) if spaced else ():
            joined_up = re.sub(r"[ .\-_*|]", "", m.group(0))
            if _SPACED_WORDS.search(joined_up):
                kind = "ignore_instructions" if "ignore" in joined_up or "disregard" in joined_up else "model_directive"
                add(kind, fold_of.span(*m.span()))
        for m in policy.finditer(fold_of.text) if policy is not None else ():
            add("policy_term", fold_of.span(*m.span()), _requested(m.group(0), labels))
        matches += _without_overlaps([found[key] for key in sorted(found)])
    return matches


def _without_overlaps(matches: list[Match]) -> list[Match]:
    """One match per stretch of text: of overlapping matches the first (then the longest) is kept, except that a
    match naming a requested label wins over one that does not."""
    kept: list[Match] = []
    for match in sorted(matches, key=lambda m: (m.start, -(m.end - m.start))):
        if kept and match.start < kept[-1].end:
            if match.label and not kept[-1].label:
                kept[-1] = match
            continue
        kept.append(match)
    return kept


def scan_pair(member: dict, job: dict, *, labels: tuple[str, ...] = (), rule_ids: tuple[str, ...] = ()) -> list[Match]:
    """The matches in a pair's member and job facts (as the teacher sees them), field by field."""
    return scan_fields(pair_fields(member, job), labels=labels, rule_ids=rule_ids)


def pair_fields(member: dict, job: dict) -> list[tuple[str, str]]:
    """(field name, text) of every scanned field of a pair; list items are named ``member.skills[2]``."""
    fields = []
    for side, facts, names in (("member", member, MEMBER_TEXT), ("job", job, JOB_TEXT)):
        for name in names:
            value = facts.get(name)
            if isinstance(value, list):
                fields += [(f"{side}.{name}[{i}]", str(item or "")) for i, item in enumerate(value)]
            else:
                fields.append((f"{side}.{name}", str(value or "")))
    return fields


def follows_data_instructions(rationale: str, label: str, matches: list[Match]) -> str:
    """Why an answer obeyed instructions planted in the data ("" when it did not): its rationale defers to them,
    and/or it gave the label the planted text asked for."""
    reasons = []
    if deference := _DEFERS.search(rationale or ""):
        reasons.append(f"the rationale defers to the data ({deference.group(0)!r})")
    asked = next((m for m in matches if m.label == label and m.kind != "policy_term"), None)
    if asked is not None:
        reasons.append(f"it gave the label {label} that {asked.field} asks for ({asked.text!r})")
    return "; ".join(reasons)
