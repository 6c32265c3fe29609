"""The one pull-request comment the rendered-diff job keeps up to date."""

from __future__ import annotations

import os
from typing import Any

from scripts.core.errors import InputError, UsageError
from scripts.pullrequest.diff import MARKER


def upsert_comment(repository: str, pr: int, body: str, token: str, session: Any = None,
                   api: str | None = None) -> str:
    """Update the comment carrying MARKER on the pull request, or create it.
    Returns "updated" or "created"."""
    import requests

    if MARKER not in body:
        body = MARKER + "\n" + body
    api = (api or os.environ.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    session = session or requests.Session()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28"}
    try:
        url = f"{api}/repos/{repository}/issues/{pr}/comments?per_page=100"
        existing = None
        while url and existing is None:
            response = session.get(url, headers=headers, timeout=30)
            response.raise_for_status()
            existing = next((c for c in response.json() if MARKER in (c.get("body") or "")), None)
            url = response.links.get("next", {}).get("url") if hasattr(response, "links") else None
        if existing is not None:
            response = session.patch(f"{api}/repos/{repository}/issues/comments/{existing['id']}",
                                     json={"body": body}, headers=headers, timeout=30)
            response.raise_for_status()
            return "updated"
        response = session.post(f"{api}/repos/{repository}/issues/{pr}/comments", json={"body": body},
                                headers=headers, timeout=30)
        response.raise_for_status()
        return "created"
    except requests.RequestException as exc:
        raise InputError(f"GitHub API: {exc}") from None


def token_from_env() -> str:
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise UsageError("GITHUB_TOKEN is not set")
    return token
