"""Parsers for answers to scripted questions: yes/no, blood pressure, ratings.

They are deliberately conservative: when an answer is ambiguous they return
``None`` and the responder asks again, rather than guessing a safety fact.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_WORD_NUMBERS = {
    "zero": 0, "none": 0, "nothing": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90, "hundred": 100, "a hundred": 100, "one hundred": 100,
}  # fmt: skip

_YES = re.compile(
    r"^(?:y|ya|yah|yea|yeah|yep|yup|yes+|yess|sure|ok|okay|k|correct|right|affirmative|absolutely|definitely|"
    r"of course|i am|i have|i did|she is|he is|they are|we are|done|placed|ready|all set|si|sí|oui|ja)\b"
)
_NO = re.compile(
    r"^(?:n|no+|nope|nah|none|nothing|never|not at all|nada|not yet|negative|i haven't|i have not|"
    r"i didn't|i did not|not really|non|nein)\b"
)
_UNSURE = re.compile(r"^(?:i'?m\s+|i am\s+)?(?:not sure|unsure|dunno|i don'?t know|no idea|maybe|perhaps)\b")
_NEGATED_YES = re.compile(r"\b(?:not|never|no)\s+(?:sure|ready|done|yet)\b")


def normalise(text: str) -> str:
    """Lower-case, NFKC-normalise, drop control characters, squeeze spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if (ch.isprintable() or ch == " ") else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip().lower()


def parse_yes_no(text: str) -> bool | None:
    """``True``/``False`` for a clear yes or no at the start of the answer; ``None`` when unclear."""
    t = normalise(text).lstrip("¡¿\"'([ ").rstrip()
    if not t:
        return None
    if _UNSURE.match(t):
        return None
    if _NEGATED_YES.search(t) and not t.startswith(("yes", "yeah", "yep")):
        return False if t.startswith(("not", "no")) else None
    is_no = bool(_NO.match(t))
    is_yes = bool(_YES.match(t))
    if is_yes and not is_no:
        if re.search(r"\bbut\b.*\b(?:no|not)\b", t):
            return None  # "yes but not really" -> ask again
        return True
    if is_no and not is_yes:
        return False
    return None


@dataclass(frozen=True)
class BloodPressure:
    systolic: int
    diastolic: int


_BP = re.compile(r"(\d{2,3})\s*(?:/|\\|over|on|-|x|by|:)\s*(\d{2,3})")


def parse_blood_pressure(text: str) -> BloodPressure | None:
    """Parse "128/84", "BP 128 over 84", "it says 128 84"; ``None`` when absent or implausible."""
    t = normalise(text)
    match = _BP.search(t)
    if match is None:
        numbers = re.findall(r"\b(\d{2,3})\b", t)
        if len(numbers) != 2:
            return None
        first, second = int(numbers[0]), int(numbers[1])
    else:
        first, second = int(match.group(1)), int(match.group(2))
    systolic, diastolic = max(first, second), min(first, second)
    if not (60 <= systolic <= 260 and 30 <= diastolic <= 180) or systolic - diastolic < 10:
        return None
    return BloodPressure(systolic, diastolic)


_OUT_OF = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*(?:/|out of|of)\s*(10|100)\b")


def parse_rating(text: str, scale_max: int) -> int | None:
    """A rating on 0..scale_max ("about a 6", "7/10", "sixty", "40%"); ``None`` when unclear.

    "N out of 10" on a 0-100 question is scaled (7/10 -> 70). Two different
    numbers ("6 or 7") take the higher one: distress is not to be under-read.
    """
    t = normalise(text)
    if not t:
        return None
    match = _OUT_OF.search(t)
    if match:
        value, base = float(match.group(1)), int(match.group(2))
        if value > base:
            return None
        return round(value * scale_max / base)
    numbers = [float(n) for n in re.findall(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)(?![\d.])", t)]
    if not numbers:
        for phrase, value in sorted(_WORD_NUMBERS.items(), key=lambda kv: -len(kv[0])):
            if re.search(rf"\b{phrase}\b", t):
                numbers = [float(value)]
                break
    if not numbers or len(numbers) > 2:
        return None
    value = max(numbers)
    if value > scale_max:
        return None
    return round(value)
