"""Text normalisation shared by the rule layer, the classifier and the output policy.

Patterns in ``guardrails/lexicons/*.yaml`` are written against the *normalised* form:
lower case, straight quotes, contractions expanded ("can't" -> "can not", "i'm" -> "i am"),
texting shorthand expanded ("rn" -> "right now", "kms" -> "kill myself"), leetspeak inside
words undone ("k1ll" -> "kill") and long letter runs shortened ("soooo" -> "soo").
Keeping one canonical form means each lexicon entry needs far fewer spelling variants.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_QUOTE_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201b": "'",
        "\u0060": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2014": " - ",
        "\u2013": " - ",
    }
)

# Contractions with an apostrophe: expanded before apostrophes are dropped, so "i'll" never becomes "ill".
_APOSTROPHE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "am not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"\b(i|you|he|she|we|they|it|that|there)'ll\b"), r"\1 will"),
    (re.compile(r"\b(i|you|he|she|we|they|it|that|there)'d\b"), r"\1 would"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"\bi'm\b"), "i am"),
    (
        re.compile(
            r"\b(he|she|it|that|what|there|who|where|how|everything|nothing|tonight|today|tomorrow|this|here|"
            r"everyone|everybody|nobody|someone|something|life|time)'s\b"
        ),
        r"\1 is",
    ),
    (re.compile(r"\blet's\b"), "let us"),
)
_LEET_TOKEN = re.compile(r"\b(?=\w*[a-z])(?=\w*[013457@$])[a-z013457@$]{3,}\b")
_LEET_MAP = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LONG_RUN = re.compile(r"([a-z])\1{2,}")
_SPACE = re.compile(r"[ \t\r\f\v]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r"[a-z0-9]+")

# A sentence ends at . ! ? ; or a newline; a clause additionally at , : and contrast words.
_SENTENCE_END = re.compile(r"[.!?;\n]+|\s-\s")
_CLAUSE_END = re.compile(r"[.!?;,:\n]+|\s-\s|\b(?:but|however|though|although|yet|except)\b")


@dataclass(frozen=True)
class Substitutions:
    """Word-level rewrites (texting shorthand, apostrophe-less contractions) compiled once."""

    pattern: re.Pattern[str] | None
    table: dict[str, str]

    @classmethod
    def build(cls, table: dict[str, str]) -> Substitutions:
        lowered = {k.lower(): v.lower() for k, v in table.items()}
        if not lowered:
            return cls(None, {})
        keys = sorted(lowered, key=len, reverse=True)
        alternation = "|".join(re.escape(k) for k in keys)
        return cls(re.compile(rf"(?<![\w'])(?:{alternation})(?![\w'])"), lowered)

    def apply(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(lambda m: self.table[m.group(0)], text)


def _undo_leet(match: re.Match[str]) -> str:
    token = match.group(0)
    # Leave measurements and times alone ("10mg", "2am", "b4" is handled by substitutions).
    if re.fullmatch(r"\d+[a-z]{1,3}|[a-z]\d+", token):
        return token
    return token.translate(_LEET_MAP)


def normalise(text: str, substitutions: Substitutions) -> str:
    """The canonical form every lexicon pattern is written against."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_MAP).lower()
    text = _CONTROL.sub(" ", text)
    for pattern, replacement in _APOSTROPHE_RULES:
        text = pattern.sub(replacement, text)
    text = text.replace("'", "")
    text = _LONG_RUN.sub(r"\1\1", text)
    text = substitutions.apply(text)
    text = _LEET_TOKEN.sub(_undo_leet, text)
    return _SPACE.sub(" ", text).strip()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def sentence_bounds(text: str, position: int) -> tuple[int, int]:
    """Start and end offsets of the sentence holding ``position``."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() <= position:
            start = match.end()
        elif match.start() >= position:
            return start, match.start()
    return start, len(text)


def clause_start(text: str, position: int) -> int:
    """Offset where the clause holding ``position`` starts (for negation scope)."""
    start = 0
    for match in _CLAUSE_END.finditer(text, 0, position):
        start = match.end()
    return start


def clause_end(text: str, position: int) -> int:
    match = _CLAUSE_END.search(text, position)
    return match.start() if match else len(text)


def last_tokens(text: str, count: int) -> str:
    """The last ``count`` word tokens of ``text`` joined by single spaces."""
    found = _TOKEN.findall(text)
    return " ".join(found[-count:]) if count > 0 else ""


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Spans inside double quotes (after normalisation all quote marks are ``"``)."""
    spans: list[tuple[int, int]] = []
    opened: int | None = None
    for index, char in enumerate(text):
        if char == '"':
            if opened is None:
                opened = index
            else:
                spans.append((opened, index))
                opened = None
    return spans
