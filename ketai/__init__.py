"""KetAI: a session companion for at-home ketamine therapy for OCD."""

__version__ = "0.1.0"
