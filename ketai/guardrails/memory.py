"""Session risk memory: what earlier turns flagged, and what that means for the current message.

``remember`` is pure: it returns a new ``SafetyMemory`` with the turn counted, risk events stored and
reassurance repeats counted per topic. ``memory_escalations`` applies ``guardrails/memory.yaml``: after a
risk signal, means-seeking or farewell messages that look harmless alone are raised, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ketai.guardrails.base import RiskEvent, SafetyMemory
from ketai.guardrails.schema import MemoryFile
from ketai.models import Assessment, EscalationLevel, Phase, Signal, SignalName

REASSURANCE_NOTE = re.compile(r"^reassurance:topic=(?P<topic>[a-z_]+):repeat=(?P<repeat>\d+)$")
CuePresent = Callable[[str, str], str | None]
"""(cue name, text) -> the matched words, or None."""


def reassurance_note(topic: str, repeat: int) -> str:
    return f"reassurance:topic={topic}:repeat={repeat}"


def reassurance_info(assessment: Assessment) -> tuple[str, int] | None:
    """The reassurance topic and its repeat count in this session (1 = first time), if any."""
    for note in assessment.notes:
        match = REASSURANCE_NOTE.match(note)
        if match:
            return match.group("topic"), int(match.group("repeat"))
    return None


def remember(
    spec: MemoryFile, memory: SafetyMemory, assessment: Assessment, phase: Phase | None
) -> SafetyMemory:
    updated = memory.model_copy(deep=True)
    updated.turn_seq = memory.turn_seq + 1
    carried = {rule.id for rule in spec.rules if not rule.stored}
    for signal in assessment.signals:
        if signal.detector == "memory" and signal.evidence in carried:
            continue
        if signal.name in spec.remember_signals and signal.level >= EscalationLevel.MONITOR:
            updated.risk_events.append(
                RiskEvent(signal=signal.name, level=signal.level, turn_seq=updated.turn_seq, phase=phase)
            )
    info = reassurance_info(assessment)
    if info is not None:
        topic, repeat = info
        updated.reassurance_counts[topic] = max(repeat, updated.reassurance_counts.get(topic, 0) + 1)
    return updated


def memory_escalations(
    spec: MemoryFile, memory: SafetyMemory, text: str, cue_match: CuePresent
) -> tuple[list[Signal], str | None]:
    """Signals raised because of earlier turns, and the note explaining the first one."""
    raised: list[Signal] = []
    note: str | None = None
    current_turn = memory.turn_seq + 1
    for rule in spec.rules:
        earlier = [
            e
            for e in memory.risk_events
            if e.signal in rule.after_signals
            and e.level >= rule.min_level
            and current_turn - e.turn_seq <= rule.within_turns
        ]
        if not earlier or any(cue_match(cue, text) is not None for cue in rule.unless_cues):
            continue
        for cue in rule.cues:
            words = cue_match(cue, text)
            if words is None:
                continue
            event = max(earlier, key=lambda e: (e.level.rank, e.turn_seq))
            explanation = rule.note.format(
                signal=event.signal.value, turn=event.turn_seq, cue=f"{cue}: '{words}'"
            )
            raised.append(
                Signal(
                    name=rule.raises or event.signal,
                    score=0.9,
                    detector="memory",
                    level=rule.level,
                    evidence=rule.id,
                )
            )
            note = note or explanation
            break
    return raised, note


def strongest(signals: list[Signal]) -> list[Signal]:
    """One signal per name: the highest level (ties: highest score)."""
    best: dict[SignalName, Signal] = {}
    for signal in signals:
        current = best.get(signal.name)
        if current is None or (signal.level.rank, signal.score) > (current.level.rank, current.score):
            best[signal.name] = signal
    return list(best.values())
