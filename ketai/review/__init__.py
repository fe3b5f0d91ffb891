"""Clinician views: transcripts, safety events, measurements, exercises, reports."""
