"""Context around a lexicon match: negation, remote past, fiction/quotes, someone else, OCD intrusion.

All cue lists live in ``guardrails/modifiers.yaml``; this module only compiles them and applies them
to one match. Each check answers "does this context cancel or lower the match?" and says why, so the
reason can be shown to a clinician (``Assessment.notes``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ketai.guardrails import text as textmod
from ketai.guardrails.schema import ModifiersFile

CONVERSATION_QUESTION_WORDS = 12

Compile = Callable[[str, str], re.Pattern[str]]


def _any(patterns: list[re.Pattern[str]], haystack: str) -> bool:
    return any(p.search(haystack) for p in patterns)


def _last_end(patterns: list[re.Pattern[str]], haystack: str) -> int:
    best = -1
    for pattern in patterns:
        for match in pattern.finditer(haystack):
            best = max(best, match.end())
    return best


@dataclass(frozen=True)
class Idioms:
    patterns: tuple[tuple[re.Pattern[str], str], ...]

    def replace(self, text: str) -> tuple[str, list[str]]:
        """Put each idiom's plain meaning in its place; return the text and what was replaced."""
        found: list[str] = []
        for pattern, means in self.patterns:
            if pattern.search(text):
                found.extend(m.group(0) for m in pattern.finditer(text))
                text = pattern.sub(means, text)
        return text, found


class ContextChecker:
    """Compiled modifier cues (one instance per process)."""

    def __init__(self, spec: ModifiersFile, compile_regex: Compile) -> None:
        where = "guardrails/modifiers.yaml"

        def many(name: str, items: list[str]) -> list[re.Pattern[str]]:
            return [compile_regex(item, f"{where}: field {name}.{i}") for i, item in enumerate(items)]

        self.window = spec.negation_window_tokens
        self.negation_before = many("negation_before", spec.negation_before)
        self.negation_after = many("negation_after", spec.negation_after)
        self.pseudo = many("pseudo_negation", spec.pseudo_negation)
        self.past_remote = many("past_remote", spec.past_remote)
        self.past_recent = many("past_recent", spec.past_recent)
        self.past_resolved = many("past_resolved", spec.past_resolved)
        self.fiction = many("fiction", spec.fiction)
        self.media = many("media", spec.media)
        self.future_plan = many("future_plan", spec.future_plan)
        self.conditional = many("conditional", spec.conditional)
        self.resolved_now = many("resolved_now", spec.resolved_now)
        self.other_person = many("other_person", spec.other_person)
        self.first_person = many("first_person", spec.first_person)
        self.dystonic = many("dystonic", spec.dystonic)
        self.syntonic = many("syntonic", spec.syntonic)
        self.intrusion_distress = many("intrusion_distress", spec.intrusion_distress)
        self.intrusion_disgust = many("intrusion_disgust", spec.intrusion_disgust)
        self.earlier_session = many("earlier_session", spec.earlier_session)
        self.still_now = many("still_now", spec.still_now)
        self.ordinary_purpose = many("ordinary_purpose", spec.ordinary_purpose)
        self.accidental_injury = many("accidental_injury", spec.accidental_injury)
        self.deliberate_injury = many("deliberate_injury", spec.deliberate_injury)
        self.conversation_question = many("conversation_question", spec.conversation_question)
        self.reported_question = many("reported_question", spec.reported_question)
        self.answer_no = many("answer_no", spec.answer_no)
        self.idioms = Idioms(
            tuple(
                (compile_regex(idiom.regex, f"{where}: field idioms.{i}.regex"), idiom.means.lower())
                for i, idiom in enumerate(spec.idioms)
            )
        )

    # -- checks on one match --------------------------------------------------------------------

    def negated(self, text: str, start: int, end: int) -> bool:
        before = text[textmod.clause_start(text, start) : start]
        window = textmod.last_tokens(before, self.window)
        head = " ".join(textmod.tokens(text[start:end])[:4])
        context = f"{window} {head}"
        for pattern in self.pseudo:
            context = pattern.sub(lambda m: " " * len(m.group(0)), context)
        if _any(self.negation_before, context[: len(window)]):
            return True
        if _any(self.negation_after, text[end : end + 48]):
            return True
        return self.question_denied(text, start, end)

    def question_denied(self, text: str, start: int, end: int) -> bool:
        """A screening question someone asked, told with the patient's "no" ("my therapist asked if I've had
        thoughts of ending my life. I said no and I meant it")."""
        asked = text[textmod.sentence_bounds(text, start)[0] : start]
        return _any(self.reported_question, asked) and _any(self.answer_no, text[end : end + 90])

    def intrusion_context(self, text: str) -> bool:
        """Any sign that the message tells of an unwanted intrusive thought, even when a syntonic cue stands
        beside it: enough to read its distress words as the reaction to the thought, not as a drug effect."""
        return _any(self.dystonic, text)

    def intrusion_disgust_near(self, text: str, start: int) -> bool:
        s_start, s_end = textmod.sentence_bounds(text, start)
        return _any(self.intrusion_disgust, text[s_start:s_end])

    def past(self, text: str, start: int) -> str | None:
        """``resolved`` (drop), ``remote`` (lower) or None (current)."""
        s_start, s_end = textmod.sentence_bounds(text, start)
        sentence = text[s_start:s_end]
        if not _any(self.past_remote, sentence) or _any(self.past_recent, sentence):
            return None
        return "resolved" if _any(self.past_resolved, text) else "remote"

    def fictional(self, text: str, start: int) -> bool:
        s_start, s_end = textmod.sentence_bounds(text, start)
        if _any(self.fiction, text[s_start:s_end]):
            return True
        inside_quotes = any(a < start < b for a, b in textmod.quoted_spans(text))
        return inside_quotes and _any(self.media, text)

    def about_someone_else(self, text: str, start: int) -> bool:
        """The nearest subject before the match is another person (only for subjectless patterns)."""
        for scope_start in (textmod.clause_start(text, start), textmod.sentence_bounds(text, start)[0]):
            before = text[scope_start:start]
            other = _last_end(self.other_person, before)
            first = _last_end(self.first_person, before)
            if other >= 0 or first >= 0:
                return other > first
        return False

    def conditional_question(self, text: str, start: int) -> bool:
        """A protocol question in the sentence holding ``start`` (with its question mark), asked before the
        match: "what's the plan if I get nauseous?" asks; "I can't breathe, what if I faint?" reports."""
        s_start, s_end = textmod.sentence_bounds(text, start)
        asked = text[s_start : s_end + 1]
        return any(m.start() <= start - s_start for p in self.conditional for m in p.finditer(asked))

    def earlier_session_effect(self, text: str, start: int) -> bool:
        """The sentence holding ``start`` places the effect in an earlier session or day, and nothing in it says
        the effect is back or still there."""
        s_start, s_end = textmod.sentence_bounds(text, start)
        sentence = text[s_start:s_end]
        return _any(self.earlier_session, sentence) and not _any(self.still_now, sentence)

    def past_resolved_message(self, text: str) -> bool:
        """The whole message is about a clearly resolved past (remote and resolved cues, nothing recent)."""
        return (
            _any(self.past_remote, text)
            and _any(self.past_resolved, text)
            and not _any(self.past_recent, text)
        )

    def resolved(self, text: str, start: int) -> bool:
        """The effect or absence mentioned at ``start`` is over: a resolution cue ends after it ("I threw up.
        Feeling better now."). A resolution told before a new effect does not cancel it ("the nausea's gone but
        now I'm shaking")."""
        return any(m.end() > start for p in self.resolved_now for m in p.finditer(text))

    def fiction_in(self, text: str) -> bool:
        return _any(self.fiction, text)

    def only_conversation_question(self, text: str) -> bool:
        """The whole message (at most ``CONVERSATION_QUESTION_WORDS`` words) asks about the conversation itself."""
        words = text.split()
        if not words or len(words) > CONVERSATION_QUESTION_WORDS:
            return False
        stripped = text.strip().lower()
        return any(pattern.fullmatch(stripped) for pattern in self.conversation_question)

    def ordinary_purpose_near(self, text: str, start: int) -> bool:
        """An everyday reason in the sentence holding ``start`` or the one after it."""
        first, end = textmod.sentence_bounds(text, start)
        if end < len(text):
            _, end = textmod.sentence_bounds(text, min(len(text) - 1, end + 1))
        return _any(self.ordinary_purpose, text[first:end])

    def ordinary_purpose_anywhere(self, text: str) -> bool:
        return _any(self.ordinary_purpose, text)

    def everyday_accident_in(self, text: str) -> bool:
        """A cut or burn with an everyday cause, and nothing making it deliberate, repeated or a reaction."""
        return _any(self.accidental_injury, text) and not _any(self.deliberate_injury, text)

    def distress_in(self, text: str) -> bool:
        return _any(self.intrusion_distress, text)

    def future_planned(self, text: str, start: int) -> bool:
        s_start, s_end = textmod.sentence_bounds(text, start)
        return _any(self.future_plan, text[s_start:s_end])

    def ego_dystonic(self, text: str, start: int) -> bool:
        """An unwanted intrusion rather than a wish: a dystonic cue, and no strong syntonic cue that is not
        itself inside a dystonic clause."""
        if not _any(self.dystonic, text):
            return False
        return not self.strongly_syntonic(text)

    def strongly_syntonic(self, text: str) -> bool:
        for pattern in self.syntonic:
            for match in pattern.finditer(text):
                clause = text[textmod.clause_start(text, match.start()) : match.end()]
                if not _any(self.dystonic, clause):
                    return True
        return False


# --- companion perspective ----------------------------------------------------------------------

_THIRD_PERSON_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # The companion's own nerves ("I'm the one panicking lol", "I'm freaking out a bit") are not the patient's panic;
    # rewritten first, so the rules below cannot turn them into the patient's words.
    (
        re.compile(
            r"\bi am (?:the one (?:who is )?)?(?:a bit |a little |so |really |kind of |kinda |low ?key |honestly )?"
            r"(?:freaking out|panicking|panicked|scared|nervous|worried|anxious|terrified|stressing|stressed)\b"
        ),
        "the companion is worried",
    ),
    # "I'm watching her", "it's hard watching him go through this": the companion watching, not someone watching
    # the patient.
    (
        re.compile(r"\b(?:watching|keeping an eye on|watching over|checking on) (?:her|him|them)\b"),
        "watching the patient",
    ),
    (re.compile(r"\b(?:he|she|they) (?:is|are)\b"), "i am"),
    (re.compile(r"\b(?:he|she|they) (?:was|were)\b"), "i was"),
    (re.compile(r"\b(?:he|she|they) (?:has|have)\b"), "i have"),
    (re.compile(r"\b(?:he|she|they) (?:does|do)\b"), "i do"),
    (re.compile(r"\b(?:himself|herself|themselves|themself)\b"), "myself"),
    (re.compile(r"\b(?:his|their)\b"), "my"),
    (
        re.compile(
            r"\bher\b(?= (?!and\b|but\b|to\b|in\b|on\b|at\b|with\b|for\b|up\b|down\b|out\b|off\b|again\b"
            r"|so\b|now\b|the\b|a\b|because\b|if\b|that\b|please\b)[a-z])"
        ),
        "my",
    ),
    (re.compile(r"\b(?:him|her|them)\b"), "me"),
    (re.compile(r"\b(?:he|she|they)\b"), "i"),
)
_VERB_S = re.compile(
    r"\bi (wants|says|keeps|feels|thinks|needs|tries|hopes|wishes|seems|looks|sounds|talks|mentions|"
    r"took|goes|plans|cuts|hits|cries|refuses|insists|asks|tells)\b"
)
_VERB_BASE = {
    "wants": "want", "says": "say", "keeps": "keep", "feels": "feel", "thinks": "think", "needs": "need",
    "tries": "try", "hopes": "hope", "wishes": "wish", "seems": "seem", "looks": "look", "sounds": "sound",
    "talks": "talk", "mentions": "mention", "took": "took", "goes": "go", "plans": "plan", "cuts": "cut",
    "hits": "hit", "cries": "cry", "refuses": "refuse", "insists": "insist", "asks": "ask", "tells": "tell",
}  # fmt: skip


def companion_perspective(text: str) -> str:
    """Rewrite a companion's third-person report about the patient into the first person, so one lexicon
    serves both roles ("she says she wants to kill herself" -> "i say i want to kill myself")."""
    for pattern, replacement in _THIRD_PERSON_RULES:
        text = pattern.sub(replacement, text)
    return _VERB_S.sub(lambda m: f"i {_VERB_BASE[m.group(1)]}", text)
