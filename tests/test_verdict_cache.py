"""The output-verdict memo returns exactly what the policy returns, and stays bounded."""

from ketai.guardrails import build_guardrails
from ketai.models import Assessment, EscalationLevel, Phase, Signal, SignalName
from ketai.verdict_cache import VerdictCache

GUARDRAILS = build_guardrails()
DRAFTS = [
    "Many people find half a troche more is fine if it isn't working.",
    "Take your time. Type ready when you'd like to start reflecting.",
    "You definitely locked the door, I promise.",
]
EMERGENCY = Assessment(
    signals=[
        Signal(name=SignalName.SUICIDE_RISK, score=1.0, detector="rules", level=EscalationLevel.EMERGENCY)
    ],
    level=EscalationLevel.EMERGENCY,
)


def test_cached_verdicts_equal_fresh_ones_for_every_context() -> None:
    cache = VerdictCache(GUARDRAILS)
    for draft in DRAFTS:
        for phase in (Phase.PEAK, Phase.INTEGRATION, None):
            for assessment in (None, EMERGENCY):
                fresh = GUARDRAILS.screen_output(draft, phase=phase, assessment=assessment)
                assert cache.screen_output(draft, phase=phase, assessment=assessment) == fresh
                assert cache.screen_output(draft, phase=phase, assessment=assessment) == fresh


def test_assessment_is_part_of_the_key() -> None:
    cache = VerdictCache(GUARDRAILS)
    calm = cache.screen_output(DRAFTS[1], phase=Phase.PEAK, assessment=None)
    crisis = cache.screen_output(DRAFTS[1], phase=Phase.PEAK, assessment=EMERGENCY)
    assert calm.verdict == "pass"
    assert crisis.verdict == "replace"  # crisis resources are required after an emergency


def test_cache_is_bounded() -> None:
    cache = VerdictCache(GUARDRAILS, max_entries=2)
    for draft in DRAFTS:
        cache.screen_output(draft, phase=None, assessment=None)
    assert len(cache._entries) == 2
