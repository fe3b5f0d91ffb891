"""Error hierarchy. Interfaces print these as one clear line, never a traceback."""


class KetaiError(Exception):
    """Base class for errors shown to a user as a clear message."""


class ContentError(KetaiError):
    """A clinician-reviewable content file is missing or invalid."""


class InvalidTransition(KetaiError):
    """An event that the phase machine does not allow in the current phase."""


class SessionNotFound(KetaiError):
    """No stored session with that id."""


class BackendUnavailable(KetaiError):
    """An optional backend (LLM, Chroma server, webhook) could not be reached."""
