"""`frontdesk practice` and `frontdesk apikey`: tenants and their keys."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from frontdesk.cli.common import (
    JsonOpt,
    PracticeOpt,
    apikey_app,
    err,
    opened,
    out,
    practice_app,
    print_json,
)


@practice_app.command("list")
def practice_list(as_json: JsonOpt = False) -> None:
    """List practices."""
    from frontdesk.services.practices import list_practices
    from frontdesk.services.views import practice_view

    with opened() as runtime, runtime.transaction() as session:
        rows = [practice_view(p) for p in list_practices(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("slug", "name", "timezone", "phone", "email")
    for row in rows:
        table.add_row(
            row["slug"], row["name"], row["timezone"], row["phone"] or "", row["email"] or ""
        )
    out.print(table)


def _profile(**values: Any) -> Any:
    from frontdesk.services.practices import PracticeProfile

    return PracticeProfile(**values)


@practice_app.command("create")
def practice_create(
    slug: Annotated[str, typer.Argument(help="Short id: lower-case letters, digits, dashes.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    timezone: Annotated[str | None, typer.Option(help="IANA zone, e.g. America/Chicago.")] = None,
    locale: Annotated[str | None, typer.Option(help="e.g. en-US.")] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    booking_url: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a practice."""
    from frontdesk.services.practices import create_practice
    from frontdesk.services.views import practice_view

    with opened() as runtime, runtime.transaction() as session:
        view = practice_view(
            create_practice(
                session,
                slug,
                _profile(
                    name=name,
                    timezone=timezone,
                    locale=locale,
                    phone=phone,
                    email=email,
                    booking_url=booking_url,
                ),
                default_timezone=runtime.settings.default_timezone,
            )
        )
    print_json(view) if as_json else out.print(f"created practice {slug}")


@practice_app.command("update")
def practice_update(
    practice: PracticeOpt = None,
    name: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    locale: Annotated[str | None, typer.Option()] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    booking_url: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a practice's profile (name, timezone, contact, booking link)."""
    from frontdesk.services.practices import apply_profile, resolve_practice
    from frontdesk.services.views import practice_view

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        apply_profile(
            chosen,
            _profile(
                name=name,
                timezone=timezone,
                locale=locale,
                phone=phone,
                email=email,
                booking_url=booking_url,
            ),
        )
        view = practice_view(chosen)
    print_json(view) if as_json else out.print(f"updated practice {view['slug']}")


# --- apikey ------------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    practice: PracticeOpt = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    read_only: Annotated[bool, typer.Option("--read-only", help="May only read.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. The key is printed once and stored only as a hash."""
    from frontdesk.services.apikeys import create_api_key
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        chosen = resolve_practice(session, practice)
        key, token = create_api_key(session, chosen, name, can_write=not read_only)
        result = {
            "practice": chosen.slug,
            "name": key.name,
            "prefix": key.prefix,
            "can_write": key.can_write,
            "key": token,
        }
    if as_json:
        print_json(result)
    else:
        err.print(
            f"API key for practice {result['practice']} (shown once; store it now):", markup=False
        )
        sys.stdout.write(token + "\n")


@apikey_app.command("list")
def apikey_list(practice: PracticeOpt = None, as_json: JsonOpt = False) -> None:
    """List a practice's API keys (prefixes only)."""
    from frontdesk.domain.times import iso
    from frontdesk.services.apikeys import list_api_keys
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        rows: list[dict[str, Any]] = [
            {
                "prefix": k.prefix,
                "name": k.name,
                "can_write": k.can_write,
                "created_at": iso(k.created_at),
                "last_used_at": iso(k.last_used_at),
                "revoked_at": iso(k.revoked_at),
            }
            for k in list_api_keys(session, resolve_practice(session, practice))
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("prefix", "name", "write", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            r["prefix"],
            r["name"],
            "yes" if r["can_write"] else "no",
            r["created_at"],
            r["last_used_at"] or "",
            r["revoked_at"] or "",
        )
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see apikey list).")],
    practice: PracticeOpt = None,
) -> None:
    """Revoke an API key at once."""
    from frontdesk.services.apikeys import revoke_api_key
    from frontdesk.services.practices import resolve_practice

    with opened() as runtime, runtime.transaction() as session:
        revoke_api_key(session, resolve_practice(session, practice), prefix, actor="cli")
    out.print(f"revoked {prefix}")


# --- import ------------------------------------------------------------------------------------
