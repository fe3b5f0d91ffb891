"""What a session knows so far: answers, readings, timers. Serialised with every turn.

The current scripted step is derived from these facts (the first unanswered
item of the phase), never stored separately, so a resumed session cannot
repeat a step that already changed state.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ketai.models import Phase, Protocol


class BPReading(BaseModel):
    systolic: int
    diastolic: int
    at: datetime

    def within(self, protocol: Protocol) -> bool:
        return self.systolic <= protocol.bp_max_systolic and self.diastolic <= protocol.bp_max_diastolic

    def emergency(self, protocol: Protocol) -> bool:
        return (
            self.systolic >= protocol.bp_emergency_systolic
            or self.diastolic >= protocol.bp_emergency_diastolic
        )


class SessionFacts(BaseModel):
    # pre-session checklist
    companion_present: bool | None = None
    companion_name_confirmed: bool | None = None
    bp_readings: list[BPReading] = Field(default_factory=list)
    no_substances: bool | None = None
    fasting_ok: bool | None = None
    setting_safe: bool | None = None
    dose_confirmed: bool | None = None
    intention: str | None = None
    baseline_suds: int | None = None
    baseline_ocd_vas: int | None = None
    # dosing
    dose_placed_at: datetime | None = None
    after_hold_done: bool = False
    after_hold_prompted: bool = False
    # peak
    peak_started_at: datetime | None = None
    peak_checkins: int = 0
    last_checkin_at: datetime | None = None
    ready_prompted: bool = False
    ready_for_integration: bool = False
    # integration
    reflection: str | None = None
    post_suds: int | None = None
    post_ocd_vas: int | None = None
    exercises_offered: list[str] = Field(default_factory=list)
    exercise_chosen: str | None = None
    exercise_step_done: bool = False
    # safety
    hold_reason: str | None = None
    hold_cleared_by: str | None = None
    phase_before_hold: Phase | None = None
    unclear_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def latest_bp(self) -> BPReading | None:
        return self.bp_readings[-1] if self.bp_readings else None

    def checklist_missing(self, protocol: Protocol) -> list[str]:
        missing: list[str] = []
        if self.companion_present is not True:
            missing.append("companion present")
        if self.companion_name_confirmed is not True:
            missing.append(f"companion named ({protocol.companion_name})")
        bp = self.latest_bp
        if bp is None:
            missing.append("blood pressure recorded")
        elif not bp.within(protocol):
            missing.append(
                f"blood pressure within {protocol.bp_max_systolic}/{protocol.bp_max_diastolic}"
                f" (last {bp.systolic}/{bp.diastolic})"
            )
        if self.no_substances is not True:
            missing.append(f"no alcohol, cannabis or sedatives in {protocol.no_substances_hours:g} h")
        if self.fasting_ok is not True:
            missing.append(f"fasting {protocol.fasting_hours:g} h")
        if self.setting_safe is not True:
            missing.append("safe setting")
        if self.dose_confirmed is not True:
            missing.append("dose confirmed against the prescription")
        if self.intention is None:
            missing.append("intention")
        if self.baseline_suds is None:
            missing.append("baseline distress rating")
        if self.baseline_ocd_vas is None:
            missing.append("baseline obsession rating")
        return missing

    def hold_remaining_s(self, protocol: Protocol, now: datetime) -> float:
        if self.dose_placed_at is None:
            return protocol.hold_minutes * 60
        return max(0.0, protocol.hold_minutes * 60 - (now - self.dose_placed_at).total_seconds())

    def peak_remaining_s(self, protocol: Protocol, now: datetime) -> float | None:
        if self.peak_started_at is None:
            return None
        return max(0.0, protocol.min_peak_minutes * 60 - (now - self.peak_started_at).total_seconds())

    def integration_missing(self) -> list[str]:
        missing: list[str] = []
        if self.reflection is None:
            missing.append("reflection")
        if self.post_suds is None:
            missing.append("post-session distress rating")
        if self.post_ocd_vas is None:
            missing.append("post-session obsession rating")
        if not self.exercise_step_done:
            missing.append("exercise choice")
        return missing
