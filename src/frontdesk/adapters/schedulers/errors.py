"""What can go wrong talking to a scheduling system, in the two kinds retry rules care about.

Messages never quote a response body or a URL's query (either may carry patient data or a
token): the status code, the exception type and the resource type are enough to act on.
"""

from __future__ import annotations

from frontdesk.domain.errors import FrontdeskError


class SyncError(FrontdeskError):
    code = "sync_error"


class TransientSyncError(SyncError):
    """Worth retrying later: timeouts, refused connections, 429 and 5xx."""

    code = "transient_sync_error"


class PermanentSyncError(SyncError):
    """Retrying the same request will not help: 4xx, a response that is not FHIR, a bad URL."""

    code = "permanent_sync_error"


class PreconditionFailed(SyncError):
    """412: the resource changed since we read it (someone else wrote it)."""

    code = "precondition_failed"
