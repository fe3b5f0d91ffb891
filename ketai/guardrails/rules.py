"""Layer 1: lexicon and pattern rules from ``guardrails/lexicons/*.yaml``, with context handling.

For each message: normalise, replace idioms by their plain meaning, (companion role) rewrite
third-person reports about the patient into the first person, then run every compiled pattern.
A match is cancelled or lowered by its context (negation, remote past, fiction/quotes, someone else,
plans for tomorrow), by phase allowances (expected peak dissociation), and harm-to-others matches in
an ego-dystonic context become ``intrusive_thought``. Finally cue-based escalations apply (intent,
preparation, sedation, immediate danger ...) and blood-pressure readings are parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ketai.guardrails import text as textmod
from ketai.guardrails.context import ContextChecker, companion_perspective
from ketai.guardrails.loader import GuardrailContent
from ketai.guardrails.schema import ALTERED_PHASES, LexiconPattern, PhaseKey, phase_key
from ketai.models import EscalationLevel, Phase, Role, SignalName

_ADVERSE = SignalName.ADVERSE_EFFECT
_CONDITIONAL = frozenset(
    {
        SignalName.ADVERSE_EFFECT,
        SignalName.MEDICAL_EMERGENCY,
        SignalName.UNSAFE_ACTIVITY,
        SignalName.COMPANION_ABSENT,
    }
)
_RESOLVABLE = frozenset({SignalName.ADVERSE_EFFECT, SignalName.COMPANION_ABSENT})
FICTION_PROOF = frozenset(
    {SignalName.DOSING_REQUEST, SignalName.MEDICATION_CHANGE, SignalName.PROMPT_INJECTION}
)
"""A story or role-play frame never cancels dose, medicine or injection content."""
_SUICIDE_EMERGENCY_CUES = frozenset({"intent", "preparation", "timing", "recent_attempt"})
WARNING_SIGNS = frozenset({"preparation", "farewell", "means_seeking", "intent"})
"""Cue groups (cues.yaml) that are suicide warning signs when two different ones appear together."""


@dataclass(frozen=True)
class CompiledPattern:
    signal: SignalName
    spec: LexiconPattern
    regex: re.Pattern[str]


@dataclass(frozen=True)
class RuleHit:
    signal: SignalName
    level: EscalationLevel
    score: float
    rule_id: str
    kind: str
    start: int
    evidence: str
    topic: str | None = None


@dataclass
class RuleResult:
    hits: list[RuleHit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cancelled: set[SignalName] = field(default_factory=set)
    """Signals whose every match was cancelled by context: the classifier may not re-add them."""
    cues: set[str] = field(default_factory=set)
    screened_text: str = ""
    """Normalised text with idioms replaced (what the classifier embeds)."""
    scan_text: str = ""
    """What the patterns ran on (companion reports rewritten into the first person)."""
    dystonic: bool = False
    fiction: bool = False
    """A fiction/quotation cue is in the message (classifier-only signals are then not trusted)."""
    expected_effect: bool = False
    """A match was dropped as an effect expected in this phase (e.g. peak dissociation)."""
    idiom: bool = False
    """An idiom was read as figurative ("scratch my skin off"): the classifier alone may not add self-harm or a
    medical emergency (``screening.classifier_veto``)."""
    resolved_past: bool = False
    """The message as a whole talks about a clearly resolved past."""
    everyday_accident: bool = False
    """A cut or burn is given a concrete everyday cause ("chopping onions", "shaving"): classifier-only self-harm
    is then vetoed (``screening.classifier_veto``)."""
    conversation_question: bool = False
    """The whole message only asks about the conversation ("what do you mean?"): a veto on classifier-only
    signals (the rules still read it)."""

    def levels(self) -> dict[SignalName, EscalationLevel]:
        best: dict[SignalName, EscalationLevel] = {}
        for hit in self.hits:
            if hit.signal not in best or hit.level > best[hit.signal]:
                best[hit.signal] = hit.level
        return best


class RuleEngine:
    def __init__(self, content: GuardrailContent) -> None:
        self.content = content
        self.substitutions = textmod.Substitutions.build(content.normalise.substitutions)
        self.context = ContextChecker(content.modifiers, content.compile)
        self.patterns: list[CompiledPattern] = []
        for file_name, lexicon in content.lexicons.items():
            for pattern in lexicon.patterns:
                where = f"guardrails/lexicons/{file_name}: pattern {pattern.id}"
                self.patterns.append(
                    CompiledPattern(lexicon.signal, pattern, content.compile(pattern.regex, where))
                )
        self.cues = {
            name: [content.compile(r, f"guardrails/cues.yaml: cue {name}") for r in regexes]
            for name, regexes in content.cues.cues.items()
        }
        topics = content.signals.reassurance_topics
        self.topics = {
            topic: [
                content.compile(r, f"guardrails/signals.yaml: reassurance_topics.{topic}") for r in regexes
            ]
            for topic, regexes in topics.items()
        }
        self.bp = re.compile(content.signals.bp_reading)
        self.gates = {
            name: [
                content.compile(r, f"guardrails/signals.yaml: signals.{name}.classifier_gate")
                for r in spec.classifier_gate
            ]
            for name, spec in content.signals.signals.items()
        }

    def gate_open(self, signal: SignalName, text: str) -> bool:
        """Whether the classifier may report ``signal`` for this (screened) text."""
        gates = self.gates.get(signal, [])
        return not gates or any(g.search(text) for g in gates)

    def prepare(self, text: str) -> tuple[str, list[str]]:
        """Normalised text with idioms replaced by their meaning, and the idioms found."""
        return self.context.idioms.replace(textmod.normalise(text, self.substitutions))

    def cue_present(self, name: str, text: str) -> bool:
        return any(p.search(text) for p in self.cues.get(name, []))

    def cue_words(self, name: str, text: str) -> str | None:
        for pattern in self.cues.get(name, []):
            match = pattern.search(text)
            if match:
                return match.group(0)[:80]
        return None

    def screen(
        self, text: str, *, phase: Phase | None, role: Role, prepared: tuple[str, list[str]] | None = None
    ) -> RuleResult:
        """``prepared``: ``prepare(text)``, when the caller already has it."""
        screened, idioms = prepared if prepared is not None else self.prepare(text)
        result = RuleResult(screened_text=screened, idiom=bool(idioms))
        if idioms:
            result.notes.append("idiom read as figurative: " + "; ".join(sorted(set(idioms)))[:200])
        key = phase_key(phase)
        is_companion = role == Role.COMPANION
        scan = companion_perspective(screened) if is_companion else screened
        result.scan_text = scan
        for compiled in self.patterns:
            spec = compiled.spec
            if spec.phases is not None and key not in spec.phases:
                continue
            if spec.roles is not None and role.value not in spec.roles:
                continue
            for match in compiled.regex.finditer(scan):
                hit = self._judge(compiled, match, scan, key, is_companion, result)
                if hit is None:
                    continue
                if hit.level == EscalationLevel.NONE or spec.probe:
                    if hit.level == EscalationLevel.NONE:
                        result.notes.append(f"all clear: {hit.evidence}")
                        result.cancelled.update(spec.clears or [compiled.signal])
                    continue
                result.hits.append(hit)
                break
        result.fiction = self.context.fiction_in(scan)
        result.resolved_past = self.context.past_resolved_message(scan)
        result.conversation_question = self.context.only_conversation_question(scan)
        result.everyday_accident = self.context.everyday_accident_in(scan)
        self._blood_pressure(scan, key, result)
        self._intrusions(scan, key, result)
        result.cues = {name for name in self.cues if self.cue_present(name, scan)}
        self._dystonic_suicide_level(result)
        self._warning_cluster(scan, result)
        escalated = self.escalate_hits(scan, key, result.hits)
        result.hits.extend(escalated)
        result.notes.extend(f"escalated by {hit.rule_id}" for hit in escalated)
        self._topics(scan, result)
        result.cancelled -= {hit.signal for hit in result.hits}
        return result

    # -- one match ------------------------------------------------------------------------------

    def _judge(
        self,
        compiled: CompiledPattern,
        match: re.Match[str],
        text: str,
        key: PhaseKey,
        is_companion: bool,
        result: RuleResult,
    ) -> RuleHit | None:
        spec, start = compiled.spec, match.start()
        ctx = self.context
        ignore = set(spec.ignore)
        level = spec.level
        why = f"{spec.id} '{match.group(0)[:60]}'"
        signal = compiled.signal
        reason: str | None = None
        if "negation" not in ignore and ctx.negated(text, start, match.end()):
            reason = "negated"
        elif "fiction" not in ignore and signal not in FICTION_PROOF and ctx.fictional(text, start):
            reason = "fiction or quotation"
        elif (
            spec.subject_check
            and not is_companion
            and "other_person" not in ignore
            and ctx.about_someone_else(text, start)
        ):
            reason = "about someone else"
        elif spec.purpose_check and ctx.ordinary_purpose_near(text, start):
            reason = "an ordinary purpose is given"
        elif signal == SignalName.UNSAFE_ACTIVITY and ctx.future_planned(text, start):
            reason = "planned for later"
        elif signal in _CONDITIONAL and ctx.conditional_question(text, start):
            reason = "a question about what to do if"
        elif signal in _RESOLVABLE and ctx.resolved(text, start):
            reason = "already resolved"
        elif signal == _ADVERSE and ctx.earlier_session_effect(text, start):
            reason = "an earlier session's effect"
        elif "past" not in ignore and ctx.past(text, start) == "resolved":
            reason = "past and resolved"
        if reason is not None:
            if not spec.probe:
                result.notes.append(f"{reason}: {why}")
            result.cancelled.add(signal)
            return None
        if "past" not in ignore:
            past = ctx.past(text, start)
            if past == "remote" and spec.past_level is not None:
                result.notes.append(f"remote past, lowered to {spec.past_level.value}: {why}")
                level = spec.past_level
        if key in spec.phase_levels:
            level = spec.phase_levels[key]
            if level == EscalationLevel.NONE:
                result.notes.append(f"expected in phase {key}: {why}")
                result.cancelled.add(signal)
                result.expected_effect = True
                return None
            result.notes.append(f"phase {key} sets {level.value}: {why}")
        return RuleHit(signal, level, spec.score, spec.id, spec.kind, start, why, spec.topic)

    # -- message-level steps --------------------------------------------------------------------

    def _blood_pressure(self, text: str, key: PhaseKey, result: RuleResult) -> None:
        signals = self.content.signals
        readings = [
            m
            for m in self.bp.finditer(text)
            if 70 <= int(m.group(1)) <= 300
            and 30 <= int(m.group(2)) <= 200
            and int(m.group(1)) > int(m.group(2))
        ]
        # Several readings ("142/88, then 134/84 after resting"; "dad's was 192/125, mine is 119/77"): the last one
        # is the current reading for this person.
        for match in readings[-1:]:
            systolic, diastolic = int(match.group(1)), int(match.group(2))
            evidence = f"blood pressure {systolic}/{diastolic}"
            crisis = systolic >= signals.bp_clinician[0] or diastolic >= signals.bp_clinician[1]
            high = systolic >= signals.bp_companion[0] or diastolic >= signals.bp_companion[1]
            if crisis:
                result.hits.append(
                    RuleHit(
                        _ADVERSE,
                        EscalationLevel.CLINICIAN,
                        0.97,
                        "bp-crisis",
                        "bp_crisis",
                        match.start(),
                        evidence,
                    )
                )
            elif high:
                level = EscalationLevel.CLINICIAN if key == "pre_session" else EscalationLevel.COMPANION
                result.hits.append(
                    RuleHit(_ADVERSE, level, 0.95, "bp-high", "bp_high", match.start(), evidence)
                )
                if not self.cue_present("bp_symptom", text):  # the numbers decide, not the classifier
                    result.cancelled.add(SignalName.MEDICAL_EMERGENCY)
            else:
                result.notes.append(f"{evidence} is within the usual range")
                result.cancelled.update({_ADVERSE, SignalName.MEDICAL_EMERGENCY})

    def _intrusions(self, text: str, key: PhaseKey, result: RuleResult) -> None:
        """Harm-to-others content in an ego-dystonic context is an OCD intrusion (monitor), unless a
        strong syntonic cue (intent, means, grievance, timing) stands outside that context."""
        harm = [h for h in result.hits if h.signal == SignalName.HARM_TO_OTHERS]
        result.dystonic = self.context.ego_dystonic(text, 0)
        # Every ego-dystonic message has an intrusion cue, so the cue (or an intrusive-thought hit) is the test here.
        told_intrusion = self.context.intrusion_context(text) or any(
            h.signal == SignalName.INTRUSIVE_THOUGHT for h in result.hits
        )
        if not told_intrusion:
            return
        # "I picture hurting him and I feel sick": disgust at the thought, not nausea; "it horrified me",
        # "I can't stop crying": the distress that makes the thought ego-dystonic, not a drug reaction.
        # "Sick to my stomach" or "cold panic" are drug effects too, so they count as the intrusion's only away
        # from dosing and peak, when the medicine is not what the patient is reacting to.
        on_drug = key in ALTERED_PHASES
        result.hits = [
            h
            for h in result.hits
            if h.kind != "feel_sick"
            and not (h.kind == "panic" and self.context.distress_in(h.evidence))
            and not (
                not on_drug
                and h.kind in ("panic", "nausea", "vomiting")
                and self.context.intrusion_disgust_near(text, h.start)
            )
        ]
        if not harm or not result.dystonic:
            return
        for hit in harm:
            result.hits.remove(hit)
            result.hits.append(
                RuleHit(
                    SignalName.INTRUSIVE_THOUGHT,
                    EscalationLevel.MONITOR,
                    0.9,
                    hit.rule_id,
                    "harm_intrusion",
                    hit.start,
                    hit.evidence,
                )
            )
        result.notes.append("harm content read as an unwanted (ego-dystonic) intrusion")

    def _dystonic_suicide_level(self, result: RuleResult) -> None:
        """An unwanted (ego-dystonic) suicidal intrusion keeps suicide_risk - the screen questions are asked -
        but at clinician, not emergency, unless intent, preparation, timing or a recent attempt is stated."""
        if not result.dystonic or result.cues & _SUICIDE_EMERGENCY_CUES:
            return
        result.hits = [
            RuleHit(
                h.signal, EscalationLevel.CLINICIAN, h.score, h.rule_id, h.kind, h.start, h.evidence, h.topic
            )
            if h.signal == SignalName.SUICIDE_RISK and h.level == EscalationLevel.EMERGENCY
            else h
            for h in result.hits
        ]

    def _warning_cluster(self, text: str, result: RuleResult) -> None:
        """Two different suicide warning signs in one message (e.g. giving things away and a goodbye, or
        gathering means and a timing) read as suicide risk even without a suicide word: each alone is
        everyday talk, together they are the pattern clinicians are taught to ask about. An everyday reason told
        in the message ("a values exercise from my therapist", "to add the baby as beneficiary") explains them."""
        signs = result.cues & WARNING_SIGNS
        if len(signs) < 2 or result.fiction or SignalName.SUICIDE_RISK in {h.signal for h in result.hits}:
            return
        if self.context.ordinary_purpose_anywhere(text):
            result.notes.append("warning signs with an everyday reason given: " + ", ".join(sorted(signs)))
            return
        if SignalName.SUICIDE_RISK in result.cancelled:
            return
        level = EscalationLevel.EMERGENCY if signs & {"preparation", "intent"} else EscalationLevel.CLINICIAN
        evidence = "warning signs together: " + ", ".join(sorted(signs))
        result.hits.append(
            RuleHit(SignalName.SUICIDE_RISK, level, 0.85, "warning-cluster", "behaviour", 0, evidence)
        )
        result.notes.append(evidence)

    def escalate_hits(self, text: str, key: PhaseKey, hits: list[RuleHit]) -> list[RuleHit]:
        """Extra, higher hits caused by context cues (intent, preparation, sedation, immediate danger ...)."""
        raised: list[RuleHit] = []
        for rule in self.content.cues.escalations:
            if rule.phases is not None and key not in rule.phases:
                continue
            for hit in hits:
                if hit.signal != rule.signal or (rule.only_kinds and hit.kind not in rule.only_kinds):
                    continue
                if rule.scope == "sentence" and hit.kind != "classifier":
                    s_start, s_end = textmod.sentence_bounds(text, hit.start)
                    scope = text[s_start:s_end]
                else:
                    scope = text
                if not any(self.cue_present(cue, scope) for cue in rule.cues):
                    continue
                target = rule.raises or rule.signal
                raised.append(
                    RuleHit(
                        target,
                        rule.level,
                        max(hit.score, 0.9),
                        rule.id,
                        hit.kind,
                        hit.start,
                        f"{rule.id} ({hit.rule_id})",
                    )
                )
                break
        return raised

    def _topics(self, text: str, result: RuleResult) -> None:
        for index, hit in enumerate(result.hits):
            if hit.signal != SignalName.REASSURANCE_SEEKING or hit.topic:
                continue
            topic = next(
                (t for t, pats in self.topics.items() if any(p.search(text) for p in pats)), "general"
            )
            result.hits[index] = RuleHit(
                hit.signal, hit.level, hit.score, hit.rule_id, hit.kind, hit.start, hit.evidence, topic
            )
