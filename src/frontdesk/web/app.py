"""The web application, built by ``create_app(settings)``; nothing is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from frontdesk import __version__
from frontdesk.adapters.metrics import make_registry
from frontdesk.agent import understand
from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.config import Settings
from frontdesk.logs import configure_logging
from frontdesk.web import access, channel_webhooks, demo_scheduler, errors, pages, widget
from frontdesk.web.api import actions, integrations, knowledge, messaging, v1, webhooks
from frontdesk.web.body_limit import BodySizeLimit


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The app for ``settings``. Pass ``runtime`` to share one (tests, ``serve``); otherwise
    the app builds its own and disposes of it on shutdown."""
    owned = runtime is None
    rt = runtime or build_runtime(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        understand.warm_in_background(settings.crisis_screen)
        yield
        if owned:
            rt.dispose()

    app = FastAPI(
        title="frontdesk",
        version=__version__,
        description=(
            "Appointment intake and schedule for a practice. Authenticate with a per-practice "
            "API key: `Authorization: Bearer fdk_…` (create one with `frontdesk apikey create`)."
        ),
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.settings = settings
    app.state.metrics_registry, app.state.dispatch_metrics = make_registry(rt.sessions)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    errors.install(app)
    access.install(app)
    app.include_router(v1.router)
    app.include_router(messaging.router)
    app.include_router(knowledge.router)
    app.include_router(webhooks.router)
    app.include_router(integrations.router)
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.include_router(widget.router)
    app.include_router(channel_webhooks.router)
    app.include_router(demo_scheduler.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app


def app_from_env() -> FastAPI:
    """For process managers: ``uvicorn --factory frontdesk.web.app:app_from_env --workers 4``."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
