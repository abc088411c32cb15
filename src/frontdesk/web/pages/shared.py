"""What the pages share: the template loader and the same-origin check for form posts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))


def same_origin(request: Request) -> bool:
    """A form post from one of our own pages. Browsers send Origin (or at least Referer) on
    POST; a cross-site form carries the other site's."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    host = request.headers.get("host", "")
    return urlsplit(source).netloc == host


def staff_of(request: Request) -> str:
    """Who is acting, for the audit trail and 'mine': the signed-in staff member."""
    name = getattr(request.state, "staff_name", None)
    return str(name) if name else "staff"
