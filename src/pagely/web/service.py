"""The app-links documents (iOS Universal Links, Android App Links), built from settings: the
links in the verification and reset emails open the installed app instead of the web page."""

from __future__ import annotations

from typing import Any

from pagely.identity.dependencies import AUTH_PREFIX
from pagely.settings import Settings
from pagely.web.errors import AppLinksNotConfigured


def app_link_paths(settings: Settings) -> list[str]:
    """The paths the app opens: the email links' pages, whatever their token."""
    auth = settings.api_prefix + AUTH_PREFIX
    return [f"{auth}/verify/*", f"{auth}/reset-password/*"]


def apple_app_site_association(settings: Settings) -> dict[str, Any]:
    """The current `appIDs`/`components` form, and per app id the older `appID`/`paths` one
    that iOS 12 and earlier read."""
    if not settings.ios_app_ids:
        raise AppLinksNotConfigured()
    paths = app_link_paths(settings)
    details: list[dict[str, Any]] = [
        {"appIDs": list(settings.ios_app_ids), "components": [{"/": path} for path in paths]}
    ]
    details += [{"appID": app_id, "paths": paths} for app_id in settings.ios_app_ids]
    return {"applinks": {"apps": [], "details": details}}


def asset_links(settings: Settings) -> list[dict[str, Any]]:
    """The Digital Asset Links statement: this site lets the app handle all its URLs (the app's
    intent filter narrows them to the email links)."""
    if not (settings.android_app_package and settings.android_cert_fingerprints):
        raise AppLinksNotConfigured()
    return [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": settings.android_app_package,
                "sha256_cert_fingerprints": list(settings.android_cert_fingerprints),
            },
        }
    ]
