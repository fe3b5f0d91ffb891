"""Rules layer for the non-crisis signals: psychosis and severe distress, companion absent, abuse or an unsafe home,
harm to others, dosing requests, substance mixing, unsafe activity and adverse effects.

Table-driven: each real case sits beside a look-alike that must stay below ``companion``. The screen runs without
the embedding classifier (the ``rules_only_guardrails`` fixture in ``conftest.py``), so these rows pin what the lexicons and
cue escalations themselves do, whatever model is trained. All texts are written for this file.
"""

from __future__ import annotations

import pytest

from ketai.guardrails import KetaiGuardrails
from ketai.models import EscalationLevel as L
from ketai.models import Phase, Role, SignalName

S = SignalName
Row = tuple[str, str | None, str, SignalName | None, L]
"""(text, phase, role, signal that must be present or None for a look-alike, expected level)"""


PSYCHOSIS: list[Row] = [
    # an agitated patient trying to get out of the house while the medicine acts: emergency (DOMAIN.md 1.5)
    (
        "he's searching for the car keys shouting that his shift started, I'm standing in front of the door "
        "and he's pushing me",
        "peak",
        "companion",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.EMERGENCY,
    ),
    (
        "she keeps trying to get outside in her dressing gown, says the bus is waiting for her. five hours since "
        "the tablet",
        "integration",
        "companion",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.EMERGENCY,
    ),
    (
        "my husband is trying to unlock the front door, says they are coming for us",
        "peak",
        "companion",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.EMERGENCY,
    ),
    (
        "he sat up, said he wants to go outside, then lay back down grinning",
        "peak",
        "companion",
        None,
        L.NONE,
    ),
    (
        "I'm trying to leave for work by 3, can she be on her own after that?",
        "integration",
        "companion",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    # derealisation that lasts into the next day or many hours: clinician outside the peak
    (
        "two days on and I still feel like I'm behind a pane of glass, my arms aren't mine",
        None,
        "patient",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    (
        "the morning after and nothing feels real, the street looks flat and fake",
        None,
        "patient",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    (
        "six hours now and she still doesn't know where she is, keeps asking me what year it is",
        "integration",
        "companion",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    (
        "the ceiling was still breathing when I got up today",
        None,
        "patient",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    ("whose hands are these, they look so far away", "peak", "patient", None, L.NONE),
    (
        "during the peak it felt like watching myself through glass. gone now, just hungry",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
    (
        "felt stuck in the same minute for ages at the peak, it's over and I'm eating crackers",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
    ("idk where he is, he was meant to be my sitter tomorrow", None, "companion", None, L.NONE),
    # mania, a poisoning belief, hallucinations after the session
    (
        "since Sunday I barely sleep, so much energy, I've launched two companies and I'm a genius",
        None,
        "patient",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    (
        "since the session I've got more energy, started a veg patch, sleeping eight hours",
        None,
        "patient",
        None,
        L.NONE,
    ),
    (
        "my partner is slipping something into my coffee, I've stopped drinking anything she makes",
        None,
        "patient",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    ("I put some honey in my tea for my throat", None, "patient", None, L.NONE),
    (
        "somebody has been getting into my flat and moving my books to mess with me",
        None,
        "patient",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
    (
        "the day after, he keeps chatting to someone by the window who isn't there",
        None,
        "companion",
        S.PSYCHOSIS_OR_SEVERE_DISTRESS,
        L.CLINICIAN,
    ),
]

COMPANION_ABSENT: list[Row] = [
    (
        "she's deep under with the mask on. I'm going to nip out for a takeaway, back in half an hour",
        "peak",
        "companion",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    (
        "popping to the chemist for her prescription, 20 mins, she's dosed",
        "dosing",
        "companion",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    (
        "he says he's totally himself at 80 minutes so I'm heading home",
        "integration",
        "companion",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    (
        "my flatmate (the sitter) dipped out to a gig, said to text if anything",
        "peak",
        "patient",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    (
        "my sitter cannot do Friday. I'll be fine on my own, I know the routine",
        None,
        "patient",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    (
        "my sitter is my nephew, he's 16 but very responsible, ok?",
        "pre_session",
        "patient",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    (
        "my boyfriend nodded off on the sofa, snoring. tablet's already in",
        "dosing",
        "patient",
        S.COMPANION_ABSENT,
        L.CLINICIAN,
    ),
    # within earshot, back already, or handed over: not absence
    ("popping to the kitchen to fill her water glass, right back", "peak", "companion", None, L.NONE),
    (
        "I'm out on the patio having a cigarette, I can see him on the sofa through the window",
        "dosing",
        "companion",
        None,
        L.NONE,
    ),
    (
        "stepped out for a quick phone call at the hour mark, he was dozing when I came back",
        "integration",
        "companion",
        None,
        L.NONE,
    ),
    (
        "her brother just arrived and knows the plan, so I'm handing over and heading off",
        "integration",
        "companion",
        None,
        L.NONE,
    ),
    ("my sitter cannot do Friday so my cousin is covering instead", None, "patient", None, L.NONE),
    ("my sitter is my 19 year old son, he's already here", "pre_session", "patient", None, L.NONE),
]

ABUSE: list[Row] = [
    (
        "my brother grabbed me and pinned me against the fridge when I said I'm still doing the sessions",
        None,
        "patient",
        S.ABUSE_OR_UNSAFE_HOME,
        L.CLINICIAN,
    ),
    (
        "she said if I skip her birthday for a session she'll put my things out on the street",
        None,
        "patient",
        S.ABUSE_OR_UNSAFE_HOME,
        L.CLINICIAN,
    ),
    (
        "her ex is hammering on the front door shouting he's getting in, she's groggy, we're in the bathroom",
        "integration",
        "companion",
        S.ABUSE_OR_UNSAFE_HOME,
        L.EMERGENCY,
    ),
    (
        "he's drunk and smashing glasses in the kitchen, said I'm next. I've wedged a chair under the handle",
        None,
        "patient",
        S.ABUSE_OR_UNSAFE_HOME,
        L.EMERGENCY,
    ),
    (
        "her dad just came home yelling and threw a mug at the wall next to her head, she's still under",
        "peak",
        "companion",
        S.ABUSE_OR_UNSAFE_HOME,
        L.EMERGENCY,
    ),
    (
        "my husband is throwing old clothes out before the move, the house is chaos",
        None,
        "patient",
        None,
        L.NONE,
    ),
    (
        "my husband is grumpy that I 'lost the whole day', he's cooking anyway",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
    (
        "my partner takes my hand when I want to check the oven again, we agreed it with my therapist",
        None,
        "patient",
        None,
        L.NONE,
    ),
]

HARM: list[Row] = [
    (
        "I do want to hurt my brother. it's not a thought I'm scared of, it's what I want",
        None,
        "patient",
        S.HARM_TO_OTHERS,
        L.EMERGENCY,
    ),
    (
        "I keep picturing hitting my boss and it doesn't bother me anymore. I kind of want to",
        None,
        "patient",
        S.HARM_TO_OTHERS,
        L.EMERGENCY,
    ),
    (
        "at the peak she imagined pushing me down the stairs and said she enjoyed it",
        "integration",
        "companion",
        S.HARM_TO_OTHERS,
        L.EMERGENCY,
    ),
    (
        "the baby screamed for an hour and I shook her hard. I'm frightened of next time",
        None,
        "patient",
        S.HARM_TO_OTHERS,
        L.EMERGENCY,
    ),
    # the same images, unwanted: an OCD intrusion stays at monitor
    (
        "I keep picturing hitting my boss and the thought horrifies me, I would never",
        None,
        "patient",
        None,
        L.NONE,
    ),
    (
        "awful image of pushing my mum down the stairs, I love her, why does my brain do this",
        None,
        "patient",
        S.INTRUSIVE_THOUGHT,
        L.MONITOR,
    ),
    ("does this image mean I secretly want to hurt him? tell me it doesn't", None, "patient", None, L.NONE),
    (
        "I'm going to strangle my brother, he ate my post-session biscuits lol",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
]

DOSING: list[Row] = [
    ("crunched the troche without thinking", "dosing", "patient", S.DOSING_REQUEST, L.CLINICIAN),
    (
        "popped 2 by accident, they were stuck together in the blister",
        "dosing",
        "patient",
        S.DOSING_REQUEST,
        L.CLINICIAN,
    ),
    (
        "he wants to swallow it now instead of spitting, the label says spit",
        "dosing",
        "companion",
        S.DOSING_REQUEST,
        L.CLINICIAN,
    ),
    ("cn i hv anothr 1 nothing is happening", "peak", "patient", S.DOSING_REQUEST, L.CLINICIAN),
    (
        "had a little corner of next week's tablet last night to help me sleep",
        None,
        "patient",
        S.DOSING_REQUEST,
        L.CLINICIAN,
    ),
    (
        "ordered some ketamine online because the clinic supply runs out",
        None,
        "patient",
        S.DOSING_REQUEST,
        L.CLINICIAN,
    ),
    ("spat it into the cup at 15 minutes like the card says", "dosing", "patient", None, L.NONE),
    ("I keep the blister pack in the locked drawer like the clinic said", None, "patient", None, L.NONE),
]

SUBSTANCE: list[Row] = [
    (
        "took my usual diazepam this morning to settle my nerves, what's first?",
        "pre_session",
        "patient",
        S.SUBSTANCE_MIX,
        L.CLINICIAN,
    ),
    (
        "one pull on my vape pen to take the edge off, that's ok?",
        "pre_session",
        "patient",
        S.SUBSTANCE_MIX,
        L.CLINICIAN,
    ),
    (
        "she's asking to smoke a joint to come down and I said no",
        "integration",
        "companion",
        S.SUBSTANCE_MIX,
        L.CLINICIAN,
    ),
    (
        "he's been drinking pretty much every night, says he'll stop before Thursday's session",
        None,
        "companion",
        S.SUBSTANCE_MIX,
        L.CLINICIAN,
    ),
    (
        "he had a root beer with lunch and won't stop raving about it",
        "pre_session",
        "companion",
        None,
        L.NONE,
    ),
    (
        "worried about my dad, he's been drinking a lot since he retired. session's at 3",
        "pre_session",
        "patient",
        None,
        L.NONE,
    ),
    (
        "can I have a glass of wine tomorrow night? not tonight obviously",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
]

UNSAFE: list[Row] = [
    (
        "feel fine at 70 minutes, gonna go grab some groceries real quick",
        "integration",
        "patient",
        S.UNSAFE_ACTIVITY,
        L.COMPANION,
    ),
    (
        "heating noodles on the stove right now, my sitter dozed off",
        "integration",
        "patient",
        S.UNSAFE_ACTIVITY,
        L.COMPANION,
    ),
    (
        "she walked out the back door in her socks, I found her at the gate",
        "integration",
        "companion",
        S.UNSAFE_ACTIVITY,
        L.COMPANION,
    ),
    (
        "I'm banned from the hob and the car today anyway, so toast it is",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
    ("my sister is driving over with dinner later", "integration", "patient", None, L.NONE),
]

ADVERSE: list[Row] = [
    (
        "it stings when I pee and there was blood this morning, third week of sessions",
        None,
        "patient",
        S.ADVERSE_EFFECT,
        L.CLINICIAN,
    ),
    (
        "still can't keep any water down, thrown up five times since it ended",
        "integration",
        "patient",
        S.ADVERSE_EFFECT,
        L.CLINICIAN,
    ),
    (
        "headache every day since session 4, worse in the mornings",
        None,
        "patient",
        S.ADVERSE_EFFECT,
        L.CLINICIAN,
    ),
    ("that queasy wave passed, sipping ginger tea now", "integration", "patient", None, L.NONE),
    (
        "lightheaded for a couple of seconds when I stood up, then totally fine",
        "integration",
        "patient",
        None,
        L.NONE,
    ),
    ("small headache this morning, since resolved after breakfast", None, "patient", None, L.NONE),
    ("so cold, could you pass me the blanket", "peak", "patient", None, L.NONE),
]

ROWS = PSYCHOSIS + COMPANION_ABSENT + ABUSE + HARM + DOSING + SUBSTANCE + UNSAFE + ADVERSE


@pytest.mark.parametrize(("text", "phase", "role", "signal", "level"), ROWS)
def test_noncrisis_rules(
    rules_only_guardrails: KetaiGuardrails,
    text: str,
    phase: str | None,
    role: str,
    signal: SignalName | None,
    level: L,
) -> None:
    assessment = rules_only_guardrails.screen_input(
        text, phase=Phase(phase) if phase else None, role=Role(role)
    )
    found = {s.name for s in assessment.signals}
    why = f"{text!r}: level={assessment.level.value} signals={sorted(n.value for n in found)} notes={assessment.notes}"
    if signal is None:
        assert assessment.level < L.COMPANION, why
    else:
        assert signal in found, why
        assert assessment.level == level, why
