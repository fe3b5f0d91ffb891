"""``KetaiGuardrails``: the object the engine calls (implements ``ketai.guardrails.base.Guardrails``).

Input screening takes the highest level any layer gives:

1. rules and lexicons (with negation, past tense, fiction/quotes, idioms, phase allowances, OCD intrusions);
2. the embedding classifier (only adds signals the rules did not explicitly cancel by context, and only in
   phases where the signal makes sense; harm words in an OCD-intrusion context become ``intrusive_thought``).
   For crisis signals the two are second opinions of each other: a crisis reading the classifier is very sure of
   overrides the rules' context veto, and a rules-only crisis signal the classifier all but rules out stays at
   monitor (still recorded, still starting the suicide screen); both bars come from out-of-author training scores;
3. session risk memory (means-seeking or farewell after an earlier risk signal);
4. the optional LLM judge (can only raise; failures are logged and ignored).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from ketai.guardrails.base import EscalationActions, SafetyMemory
from ketai.guardrails.classifier import EMERGENCY_LABEL, Reading, SignalClassifier
from ketai.guardrails.ladder import AckTimeoutActions, Ladder
from ketai.guardrails.loader import GuardrailContent
from ketai.guardrails.memory import memory_escalations, reassurance_note, remember, strongest
from ketai.guardrails.output_classifier import OutputClassifier
from ketai.guardrails.output_policy import OutputPolicy, ScriptedText
from ketai.guardrails.rules import FICTION_PROOF, RuleEngine, RuleHit, RuleResult
from ketai.guardrails.schema import ALTERED_PHASES, SignalSpec, phase_key
from ketai.models import Assessment, EscalationLevel, OutputVerdict, Phase, Role, Signal, SignalName

log = logging.getLogger(__name__)

MAX_SCREEN_CHARS = 4000
CLASSIFIER_ONLY_EMERGENCY = 0.7
"""Emergency probability needed to raise a signal that only the classifier found."""
"""Very long messages are screened on a bounded window (start and end); a note says so."""
_PHYSICAL = frozenset(
    {
        SignalName.MEDICAL_EMERGENCY,
        SignalName.ADVERSE_EFFECT,
        SignalName.DOSING_REQUEST,
        SignalName.MEDICATION_CHANGE,
        SignalName.SUBSTANCE_MIX,
    }
)
_UNGATED = frozenset({SignalName.SUICIDE_RISK, SignalName.SELF_HARM, SignalName.MEDICAL_EMERGENCY})
"""Crisis signals: the classifier is a real second line for phrasings no topic word foresaw, so no topic gate
(context vetoes - negation, past, fiction, someone else, peak dissociation - still apply)."""
OVERRIDABLE = _UNGATED
"""Crisis signals whose context vetoes a very confident classifier may override: the rules read negation and
tense from a few words around a match ("no fr tho i kinda want to die", "not suicidal exactly but i wouldn't
mind if a car hit me"), while the tuned model reads the whole message."""
_MEANS_SIGNALS = frozenset({SignalName.SUICIDE_RISK, SignalName.SELF_HARM})
DISAVOWAL_CUE = "disavowal"
"""Cue group (cues.yaml) for a message that re-reads its own dark words ("I meant the checking", "of
embarrassment"): a rules-only signal there is kept at monitor below the classifier's higher ``disavowal_demotion``
bar, chosen out of author like ``rule_demotion``."""
SHORT_ANSWER_WORDS = 6
SHORT_CRISIS_WORDS = 3
SHORT_ANSWER_BAR = 0.6
"""Very short replies carry too little text for an embedding: the classifier scores "swallowed" (an ordinary
answer to "swallow what is left now") as high as "another one pls". So on replies of at most
``SHORT_ANSWER_WORDS`` words a non-crisis signal must come from the rules, and on replies of at most
``SHORT_CRISIS_WORDS`` words a classifier-only crisis signal must close ``SHORT_ANSWER_BAR`` of the gap
between its threshold and 1."""


_IDIOM_VETOED = frozenset({SignalName.SELF_HARM, SignalName.MEDICAL_EMERGENCY})
"""With an idiom read as figurative in the message ("scratch my skin off", "banging my head on the desk"), a
classifier-only self-harm or medical signal is not trusted: the idiom's paraphrase still reads as "...myself" to
the models, while a real injury in the same message is still found by the rules. Suicide risk is not vetoed:
real ideation often comes wrapped in idioms."""


def classifier_gated(name: SignalName) -> bool:
    """Whether the classifier needs the signal's topic words before it may report it."""
    return name not in _UNGATED


class Veto(NamedTuple):
    """Why the classifier may not add a signal. ``firm`` vetoes always hold (phase, OCD intrusion, a question about
    the conversation, an idiom for self-harm and medical, whose paraphrase still reads as injury to the model, and a
    cut or burn with an everyday cause for self-harm);
    the others are the rules' reading of context (negation, past, fiction, expected effect, a bare means question),
    which a crisis reading the classifier is very sure of may override (``ClassifierArtifact.veto_override``, chosen
    out of author)."""

    reason: str
    firm: bool


def classifier_veto(
    rules: RuleEngine, specs: Mapping[SignalName, SignalSpec], name: SignalName, result: RuleResult, key: str
) -> Veto | None:
    """Why the classifier may not add ``name`` to this message (None: it may). Shared with training, so
    thresholds are chosen under the same conditions as at runtime."""
    spec = specs.get(name)
    if spec is None or (spec.phases is not None and key not in spec.phases):
        return Veto(f"not applicable in phase {key}", firm=True)
    if result.dystonic and name in (SignalName.PSYCHOSIS_OR_SEVERE_DISTRESS, SignalName.SELF_HARM):
        # Soft for self-harm: the dystonic cues are broad ("keep thinking", "why do I"), and a self-harm urge told
        # beside one ("keep thinking about the blade in my drawer. want it so bad") is still an urge; a very
        # confident classifier overrides, as for the other context vetoes.
        return Veto("ego-dystonic OCD intrusion", firm=name != SignalName.SELF_HARM)
    if result.conversation_question:
        return Veto("the message only asks about the conversation (e.g. what the question means)", firm=True)
    if name in _IDIOM_VETOED and result.idiom:
        return Veto(
            "an idiom in the message reads as figurative (self-harm and medical need the rules)", firm=True
        )
    if name == SignalName.SELF_HARM and result.everyday_accident:
        # firm: the model reads any fresh cut or burn as self-harm with high confidence (0.88-0.94 on "cut my thumb
        # on the mandoline"); the rules still read "on purpose", "again" and every self-harm word
        return Veto("a cut or burn with an everyday cause (cooking, shaving, tools)", firm=True)
    reason = _context_veto(rules, name, result, key)
    if reason is None:
        return None
    return Veto(reason, firm=name not in OVERRIDABLE)


def _context_veto(rules: RuleEngine, name: SignalName, result: RuleResult, key: str) -> str | None:
    if name in result.cancelled:
        return "rules found a cancelling context (negation, past, fiction, all clear, phase)"
    if result.fiction and name not in FICTION_PROOF:
        return "fiction or quotation in the message"
    topic = rules.gate_open(name, result.screened_text)
    if classifier_gated(name) and not topic:
        return "no topic words for this signal"
    if name in _UNGATED and not topic and (result.expected_effect or key in ALTERED_PHASES):
        return "dramatic words while effects are expected, and no physical or risk words"
    if result.expected_effect and name not in _UNGATED and name not in FICTION_PROOF:
        return "the rules read the message as an effect expected in this phase (e.g. peak dissociation)"
    if name in _UNGATED and result.resolved_past:
        return "the message is about a clearly resolved past"
    if (
        name in _MEANS_SIGNALS
        and not topic
        and rules.cue_present("means_seeking", result.scan_text)
        and not rules.cue_present("lethality", result.scan_text)
    ):
        # "where do we keep the pills?" is harmless alone; session memory raises it after earlier risk
        return "a means or logistics question without risk words (left to session memory)"
    return None


def short_answer_bar(name: SignalName, threshold: float, text: str) -> float | None:
    """The stricter bar for very short messages (above 1: not from the classifier), or None for ordinary ones."""
    words = len(text.split())
    if name not in _UNGATED:
        return 1.01 if words <= SHORT_ANSWER_WORDS else None
    if words > SHORT_CRISIS_WORDS:
        return None
    return threshold + (1.0 - threshold) * SHORT_ANSWER_BAR


class Judge(Protocol):
    def judge(self, text: str, *, phase: Phase | None, role: Role) -> list[Signal]: ...


def bounded(text: str) -> tuple[str, str | None]:
    if len(text) <= MAX_SCREEN_CHARS:
        return text, None
    half = MAX_SCREEN_CHARS // 2
    note = f"message of {len(text)} characters: screened the first and last {half} characters only"
    return f"{text[:half]}\n{text[-half:]}", note


class KetaiGuardrails:
    def __init__(
        self,
        content: GuardrailContent,
        *,
        classifier: SignalClassifier | None,
        judge: Judge | None = None,
        ack_timeout_s: float = 180.0,
        output_classifier: OutputClassifier | None = None,
        scripted: ScriptedText | None = None,
    ) -> None:
        self.content = content
        self.rules = RuleEngine(content)
        self.classifier = classifier
        self.judge = judge
        self.ladder = Ladder(content, ack_timeout_s)
        self.output_policy = OutputPolicy(
            content, self.rules.context, self.ladder, self.rules.substitutions, output_classifier, scripted
        )
        self.specs = content.signals.signals

    # -- input ----------------------------------------------------------------------------------

    def screen_input(
        self, text: str, *, phase: Phase | None, role: Role, memory: SafetyMemory | None = None
    ) -> Assessment:
        window, long_note = bounded(text)
        prepared = self.rules.prepare(window)
        pending = None
        if self.classifier is not None and prepared[0].strip():
            # The classifier's network runs on the screening worker while the rules run here.
            pending = self.classifier.begin_read(prepared[0], phase, role)
        result = self.rules.screen(window, phase=phase, role=role, prepared=prepared)
        signals = [self._from_hit(hit) for hit in result.hits]
        notes = list(result.notes)
        if long_note:
            notes.append(long_note)
        if pending is not None:
            reading = pending.result()
            disavowed = DISAVOWAL_CUE in result.cues
            signals = [self._second_opinion(s, reading, notes, disavowed) for s in signals]
            signals.extend(self._classify(result, reading, phase, notes))
        memory_note: str | None = None
        if memory is not None:
            raised, memory_note = memory_escalations(
                self.content.memory, memory, result.scan_text, self.rules.cue_words
            )
            signals.extend(raised)
        if self.judge is not None:
            signals.extend(self._judge(window, phase, role, notes))
        signals = self._tidy(strongest(signals), notes)
        self._count_reassurance(signals, memory, notes)
        level = EscalationLevel.highest([s.level for s in signals])
        return Assessment(signals=signals, level=level, memory_note=memory_note, notes=notes)

    def _from_hit(self, hit: RuleHit) -> Signal:
        evidence = hit.evidence if not hit.topic else f"{hit.evidence} topic={hit.topic}"
        return Signal(
            name=hit.signal, score=hit.score, detector="rules", level=hit.level, evidence=evidence[:300]
        )

    def _second_opinion(self, signal: Signal, reading: Reading, notes: list[str], disavowed: bool) -> Signal:
        """A signal only the rules found stays at monitor when the classifier all but rules it out (a higher bar
        when the message re-reads its own words: ``DISAVOWAL_CUE``), and at clinician when the rules alone call an
        emergency the classifier all but rules out (``rules_emergency_floor``)."""
        assert self.classifier is not None
        bar = self.classifier.rule_demotion(signal.name.value, disavowed=disavowed)
        p = reading.probabilities.get(signal.name.value, 1.0)
        if signal.detector != "rules" or signal.level < EscalationLevel.COMPANION:
            return signal
        if p >= bar:
            return self._emergency_second_opinion(signal, reading, notes)
        why = " (the message re-reads its own words)" if disavowed else ""
        note = f"rules {signal.name.value} kept at monitor: the classifier reads p={p:.3f} < {bar:.2f}{why}"
        # Two hits of one signal would otherwise tell the clinician the same thing twice.
        if note not in notes:
            notes.append(note)
        return signal.model_copy(update={"level": EscalationLevel.MONITOR})

    def _emergency_second_opinion(self, signal: Signal, reading: Reading, notes: list[str]) -> Signal:
        assert self.classifier is not None
        floor = self.classifier.artifact.rules_emergency_floor
        p = reading.probabilities.get(EMERGENCY_LABEL, 1.0)
        if floor is None or signal.level != EscalationLevel.EMERGENCY or p >= floor:
            return signal
        note = f"rules {signal.name.value} kept at clinician: the classifier reads emergency p={p:.3f} < {floor:.2f}"
        if note not in notes:
            notes.append(note)
        return signal.model_copy(update={"level": EscalationLevel.CLINICIAN})

    def _classify(
        self, result: RuleResult, reading: Reading, phase: Phase | None, notes: list[str]
    ) -> list[Signal]:
        assert self.classifier is not None
        predicted = dict(reading.found)
        predicted.pop(EMERGENCY_LABEL, None)
        found = {hit.signal for hit in result.hits}
        key = phase_key(phase)
        extra: list[RuleHit] = []
        for label, probability in predicted.items():
            name = SignalName(label)
            if name in found:
                continue
            veto = classifier_veto(self.rules, self.specs, name, result, key)
            why = veto.reason if veto is not None else None
            override = self.classifier.veto_override(label)
            if veto is not None and not veto.firm and probability >= override:
                notes.append(f"classifier {name.value} ({probability:.2f}) overrides: {veto.reason}")
                why = None
            bar = short_answer_bar(name, self.classifier.threshold(label), result.screened_text)
            if why is None and bar is not None and probability < bar:
                why = f"very short message needs p >= {bar:.2f}"
            if why:
                notes.append(f"classifier {name.value} ({probability:.2f}) not used: {why}")
                continue
            if name == SignalName.HARM_TO_OTHERS and result.dystonic:
                name = SignalName.INTRUSIVE_THOUGHT
            extra.append(
                RuleHit(
                    name,
                    self.specs[name].level,
                    probability,
                    "classifier",
                    "classifier",
                    0,
                    f"classifier p={probability:.2f}",
                )
            )
        raised = self.rules.escalate_hits(result.scan_text, key, extra)
        signals = [
            Signal(
                name=h.signal,
                score=min(1.0, h.score),
                detector="classifier",
                level=h.level,
                evidence=h.evidence,
            )
            for h in extra + raised
        ]
        emergency = reading.probabilities.get(EMERGENCY_LABEL)
        capable = {SignalName(label) for label in self.classifier.emergency_capable(emergency or 0.0)}
        if capable and emergency is not None and not result.dystonic and not result.fiction:
            # Only signals already at clinician level (a remote-past mention at monitor is not raised), and
            # a classifier-only signal needs a clearer emergency reading than one the rules found.
            from_rules = {h.signal for h in result.hits if h.level >= EscalationLevel.CLINICIAN}
            from_model = {s.name for s in signals if s.level >= EscalationLevel.CLINICIAN}
            if emergency < CLASSIFIER_ONLY_EMERGENCY:
                from_model &= {SignalName.SUICIDE_RISK}
            for name in sorted((from_rules | from_model) & capable):
                notes.append(f"classifier: message reads as an emergency (p={emergency:.2f})")
                signals.append(
                    Signal(
                        name=name,
                        score=min(1.0, emergency),
                        detector="classifier",
                        level=EscalationLevel.EMERGENCY,
                        evidence=f"level_emergency p={emergency:.2f}",
                    )
                )
        return signals

    def _judge(self, text: str, phase: Phase | None, role: Role, notes: list[str]) -> list[Signal]:
        assert self.judge is not None
        try:
            return self.judge.judge(text, phase=phase, role=role)
        except Exception as exc:  # the judge is optional: never let it break screening
            log.warning("llm judge failed, ignored: %s", exc)
            notes.append("llm judge unavailable; rules and classifier only")
            return []

    def _tidy(self, signals: list[Signal], notes: list[str]) -> list[Signal]:
        names = {s.name for s in signals}
        if SignalName.ADVERSE_EFFECT in names and SignalName.MEDICAL_EMERGENCY in names:
            # the emergency already covers the symptom; one clear signal for the clinician
            signals = [s for s in signals if s.name != SignalName.ADVERSE_EFFECT]
            names.discard(SignalName.ADVERSE_EFFECT)
        if SignalName.REASSURANCE_SEEKING in names and names & _PHYSICAL:
            notes.append("reassurance seeking dropped: a physical-safety or medicine question comes first")
            signals = [s for s in signals if s.name != SignalName.REASSURANCE_SEEKING]
        return sorted(signals, key=lambda s: (-s.level.rank, -self.specs[s.name].priority))

    def _count_reassurance(
        self, signals: list[Signal], memory: SafetyMemory | None, notes: list[str]
    ) -> None:
        for signal in signals:
            if signal.name != SignalName.REASSURANCE_SEEKING:
                continue
            topic = signal.evidence.rsplit("topic=", 1)[1] if "topic=" in signal.evidence else "general"
            previous = memory.reassurance_counts.get(topic, 0) if memory else 0
            notes.append(reassurance_note(topic, previous + 1))

    def remember(self, memory: SafetyMemory, assessment: Assessment, *, phase: Phase | None) -> SafetyMemory:
        return remember(self.content.memory, memory, assessment, phase)

    # -- ladder and output ------------------------------------------------------------------------

    def actions_for(
        self, assessment: Assessment, *, phase: Phase | None, role: Role, locale: str
    ) -> EscalationActions:
        return self.ladder.actions_for(assessment, phase=phase, role=role, locale=locale)

    def ack_timeout_actions(
        self, level: EscalationLevel, *, role: Role = Role.PATIENT, locale: str = "US"
    ) -> AckTimeoutActions:
        return self.ladder.ack_timeout_actions(level, role=role, locale=locale)

    def screen_output(
        self, draft: str, *, phase: Phase | None, assessment: Assessment | None, locale: str = "US"
    ) -> OutputVerdict:
        return self.output_policy.screen(draft, phase=phase, assessment=assessment, locale=locale)
