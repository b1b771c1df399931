"""Why a web document is not found."""

from __future__ import annotations

from pagely.core.errors import NotFound


class AppLinksNotConfigured(NotFound):
    """The app-links document for a platform whose app settings are unset: as if not served."""

    message = "Not found"
