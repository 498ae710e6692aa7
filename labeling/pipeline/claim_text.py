"""Normalising text for claim grounding (:mod:`.claims`): words as keys (ASCII-folded, lower-case, stemmed,
synonyms spelled one way), the lexicon of claim words by kind, and the tokens of a rationale with where its
sentences, clauses and lists break."""

import functools
import re
from dataclasses import dataclass

import Stemmer
from anyascii import anyascii

from . import claim_words as words

_STEM = Stemmer.Stemmer("english").stemWord
_TOKEN = re.compile(r"[A-Za-z]&[A-Za-z]\b|\.?[^\W_]+(?:[+#]+|(?:\.[^\W_]+)+)?")
POSSESSIVE = re.compile(r"['’]s\b")
_SENTENCE_BREAK = re.compile(r"[.!?:;()\[\]\"“”‘’—]|\s[-–]\s")
_LIST_BREAK = re.compile(r"[,/&]")
_UMLAUT = re.compile(r"(?<=[aou])e")


@functools.lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """One word's key: ASCII-folded, lower-case, stemmed; "ue"/"oe"/"ae" as "u"/"o"/"a" (Düsseldorf, Duesseldorf)."""
    if len(word) > 2 and word.endswith("s") and word[:-1].isupper():  # "ICUs", "GPs"
        word = word[:-1]
    folded = (word if word.isascii() else anyascii(word)).lower().strip(".")
    return _UMLAUT.sub("", _STEM(folded)) if folded.isalpha() else folded


def stems(text: str) -> list[str]:
    return [stem(token) for token in _TOKEN.findall(POSSESSIVE.sub("", text))]


_SYNONYMS = {tuple(stems(k)): tuple(stems(v)) for k, v in words.SYNONYMS.items()}
_SYNONYM_HEADS = {key[0] for key in _SYNONYMS}


def canonical(keys: list[str]) -> list[str]:
    """Replace synonyms (longest first, up to three words) by their canonical spelling."""
    out, i = [], 0
    while i < len(keys):
        replacement, length = None, 1
        if keys[i] in _SYNONYM_HEADS:
            for length in (3, 2, 1):
                replacement = _SYNONYMS.get(tuple(keys[i : i + length]))
                if replacement:
                    break
        out.extend(replacement or (keys[i],))
        i += length if replacement else 1
    return out


def canonical_set(entries) -> set[str]:
    return {key for entry in entries for key in canonical(stems(entry))}


def phrase_table(entries) -> set[tuple[str, ...]]:
    return {tuple(stems(entry)) for entry in entries}


def _lexicon() -> dict[tuple[str, ...], str]:
    """Raw stem sequences (canonical ones and their synonyms) -> the kind of claim they make."""
    kinds = [
        ("skill", words.SKILLS), ("degree", words.DEGREE_WORDS), ("credential", words.CREDENTIAL_WORDS),
        ("credential", words.CREDENTIAL_ACRONYMS), ("seniority", words.RANKS), ("location", words.WORK_MODES),
    ]  # fmt: skip
    table = {tuple(canonical(stems(entry))): kind for kind, entries in kinds for entry in entries}
    for surface, meaning in words.SYNONYMS.items():
        kind = table.get(tuple(canonical(stems(meaning))))
        if kind:
            table[tuple(stems(surface))] = kind
    return table


LEXICON = _lexicon()


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # as written
    folded: str  # in ASCII
    key: str  # stem (before synonyms)
    start: int
    end: int
    opens_sentence: bool  # first of a sentence, a clause or a bracket
    listed: bool  # after a list separator (",", "/", "&")


def tokens(text: str) -> list[Token]:
    text = POSSESSIVE.sub(lambda m: " " * len(m.group()), text)  # "Zoë's" -> "Zoë  ", offsets kept
    out: list[Token] = []
    for m in _TOKEN.finditer(text):
        raw, gap_start = m.group(), out[-1].end if out else 0
        plain = m.start() - gap_start == 1 and text[gap_start] == " "
        opens = not out or (not plain and bool(_SENTENCE_BREAK.search(text, gap_start, m.start())))
        listed = not plain and bool(_LIST_BREAK.search(text, gap_start, m.start()))
        folded = raw if raw.isascii() else anyascii(raw)
        out.append(Token(raw, folded, stem(raw), m.start(), m.end(), opens, listed))
    return out
