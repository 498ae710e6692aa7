"""Numbers with a unit in text, as intervals: "5+ years" is [5, ∞) years, "3-5 years" [3, 5], "about 10 years"
[8.5, 11.5], "€60k" 60,000 EUR, "team of 8" 8 people, "eight nurses" 8 people. :func:`supported` compares a
rationale's number with the pair's. Part of claim grounding (:mod:`.claims`)."""

import math
import re
from dataclasses import dataclass

import Stemmer

from . import claim_words as words

_STEM = Stemmer.Stemmer("english").stemWord


@dataclass(frozen=True, slots=True)
class Quantity:
    text: str  # as written
    low: float
    high: float
    unit: str  # year, month, week, day, hour, people, percent, money:<currency>, date, other:<stem>, bare
    approximate: bool = False  # "about", "nearly", "~": the interval is the stated value ± 15 %


_NUM = r"\d{1,3}(?:[,.]\d{3})+(?![\d.,]\d)|\d+(?:\.\d+)?"
_WORDNUM = "|".join(sorted((re.escape(w) for w in words.NUMBER_WORDS), key=len, reverse=True))
_CURRENCY = r"[€$£]|\b(?:eur|usd|gbp|chf)\b"
_NUMBER = re.compile(
    rf"(?P<pre>\b(?:at\s+least|a\s+minimum\s+of|minimum\s+of|minimum|min\.?|more\s+than|over|upwards\s+of|above|"
    rf"in\s+excess\s+of|under|less\s+than|fewer\s+than|up\s+to|below|nearly|almost|around|about|approximately|"
    rf"approx\.?|roughly|some|between)\s+|~\s*)?"
    rf"(?P<team>\b(?:team|staff|crew|group|department|brigade|squad|unit|class)\s+of\s+)?"
    rf"(?P<cur>(?:{_CURRENCY})\s*)?"
    rf"(?<![\w.])(?P<a>{_NUM}|\b(?:{_WORDNUM})\b)(?P<ak>[km]\b)?(?!\w)"  # not "3f2a" (a hash), nor "S3"
    rf"(?:\s*(?:[-–—]|\bto\b|\band\b)\s*(?:(?:{_CURRENCY})\s*)?(?P<b>{_NUM})(?P<bk>[km]\b)?)?"
    rf"(?P<plus>\s*\+|[\s-]*plus\b|\s+or\s+more\b)?"
    rf"(?P<cur2>\s*(?:[€$£]|\b(?:eur|usd|gbp|chf|euros?|dollars?|pounds?)\b))?"
    rf"(?P<unit>\s*%|\s*(?:percent|per\s+cent)\b|[\s-]*(?P<w1>[a-z][a-z'-]*)(?:\s+(?P<w2>[a-z]+))?)?"
)
_AT_LEAST = ("at", "a minimum", "minimum", "min", "more", "over", "upwards", "above", "in excess")
_AT_MOST = ("under", "less", "fewer", "up", "below")
_CURRENCIES = {"€": "eur", "euro": "eur", "euros": "eur", "$": "usd", "dollar": "usd", "dollars": "usd",
               "£": "gbp", "pound": "gbp", "pounds": "gbp"}  # fmt: skip
_TIME = {_STEM(w): unit for w, unit in words.TIME_UNITS.items()}
_PEOPLE = {_STEM(w) for w in words.PEOPLE_UNITS}
_META_UNITS = {_STEM(w) for w in words.META_UNITS}
_PLAIN = {w.lower() for w in words.COMMON}
_FACT_UNITS = ("year", "month", "week", "day", "hour", "people", "percent", "money")


def _value(digits: str, suffix: str | None) -> float:
    word = words.NUMBER_WORDS.get(re.sub(r"\s+", " ", digits))
    if word is not None:
        return float(word)
    if re.fullmatch(r"\d{1,3}(?:[,.]\d{3})+", digits):
        digits = re.sub(r"[,.]", "", digits)
    return float(digits) * {"k": 1e3, "m": 1e6}.get(suffix or "", 1)


def _unit(m: re.Match) -> tuple[str, int]:
    """(unit, end of the quantity in the text); unit "" when the number states no fact ("2 of 3 skills")."""
    unit_text = (m["unit"] or "").strip()
    if unit_text.startswith(("%", "per")):
        return "percent", m.end("unit")
    currency = (m["cur"] or m["cur2"] or "").strip()
    if currency or m["ak"]:
        end = max(m.end(g) for g in ("a", "ak", "b", "bk", "cur2") if m[g])
        return f"money:{_CURRENCIES.get(currency, currency)}", end
    if m["team"]:
        return "people", m.end("b") if m["b"] else m.end("a")
    if "decade" in m["a"]:
        return "year", m.end("a")
    first = _STEM(m["w1"]) if m["w1"] else ""
    for group in ("w1", "w2") if first not in _META_UNITS else ():  # "12 direct reports", not "2 of 3 years"
        unit = _STEM(m[group]) if m[group] else ""
        if unit in _TIME or unit in _PEOPLE:
            return _TIME.get(unit, "people"), m.end(group)
    if first and first not in _META_UNITS and m["w1"] not in _PLAIN:
        return f"other:{first}", m.end("w1")
    if re.fullmatch(r"(?:19[5-9]|20[0-4])\d", m["a"]):
        return "date", m.end("a")
    return "", m.end("a")


def _interval(m: re.Match, unit: str) -> tuple[float, float]:
    times = 10 if unit == "year" and m["w1"] and _STEM(m["w1"]) == "decad" else 1
    a = _value(m["a"], m["ak"]) * times
    pre = re.sub(r"\s+", " ", (m["pre"] or "").strip().rstrip("."))
    if m["b"]:
        return a, _value(m["b"], m["bk"] or m["ak"]) * times
    if m["plus"] or pre.startswith(_AT_LEAST):
        return a, math.inf
    if pre.startswith(_AT_MOST):
        return 0.0, a
    if pre:  # about, nearly, around, ~
        return a * 0.85, a * 1.15
    return a, a


def quantities(text: str, *, stated_only: bool) -> list[Quantity]:
    """The numbers of ``text``. ``stated_only``: those a rationale asserts as facts (with a unit; number words
    only with one of time, people, money or percent); otherwise every number, a bare one with unit "bare"."""
    found = []
    lowered = text.lower()
    for m in _NUMBER.finditer(lowered):
        unit, end = _unit(m)
        if stated_only and (not unit or (not m["a"][0].isdigit() and unit.split(":")[0] not in _FACT_UNITS)):
            continue
        if not unit and not m["a"][0].isdigit():
            continue
        unit = unit or "bare"
        low, high = _interval(m, unit)
        start = m.start("pre") if m["pre"] else m.start("team") if m["team"] else m.start()
        shown = (text if len(lowered) == len(text) else lowered)[start:end].strip()
        approximate = bool(m["pre"]) and low != high and not math.isinf(high) and not m["b"] and low > 0
        found.append(Quantity(shown, low, high, unit, approximate))
    return found


def _same_unit(claim: str, fact: str) -> bool:
    if claim == fact:
        return True
    kind, _, currency = claim.partition(":")
    fact_kind, _, fact_currency = fact.partition(":")
    return kind == fact_kind == "money" and not (currency and fact_currency)


def supported(claim: Quantity, facts: tuple[Quantity, ...]) -> bool:
    """Whether a number of the text supports the claim: within its range, or starting where it starts ("5+ years"
    by "5 years" or "at least 5 years", "4 years" by "3-5 years"; "6 years" not by "5+ years"). A year, or a
    number with an unknown unit ("EN ISO 9606 certification"), needs the same number anywhere; "about 10 years"
    is supported by 9 to 11 years."""
    loose = claim.unit == "date" or claim.unit.startswith("other:")
    for fact in facts:
        if loose:
            if math.isclose(claim.low, fact.low) and fact.low == fact.high:
                return True
            continue
        if not _same_unit(claim.unit, fact.unit):
            continue
        if math.isclose(claim.low, fact.low):
            return True
        if not math.isinf(fact.high) and fact.low <= claim.low and claim.high <= fact.high:
            return True
        if math.isinf(claim.high) and fact.low >= claim.low:
            return True
        if claim.approximate and fact.low == fact.high and claim.low <= fact.low <= claim.high:
            return True
    return False
