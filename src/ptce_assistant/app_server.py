"""The Streamlit app's server command: the options every `ptce app` starts it with."""

from __future__ import annotations

import sys
from pathlib import Path

from ptce_assistant.config import PROJECT_ROOT, Settings

APP_SCRIPT = PROJECT_ROOT / "app" / "streamlit_app.py"


def app_command(settings: Settings, host: str, port: int, secrets: Path | None = None) -> list[str]:
    """`python -m streamlit run` over the app, listening on `host:port`, with `secrets` (secrets.toml) if given."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.maxUploadSize",
        str(settings.max_upload_mb),
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        # The élus see no « Deploy » button nor developer menu (set here: it holds from the first page on).
        "--client.toolbarMode",
        "viewer",
        # The palette checked for contrast (docs/accessibility.md); the dark theme is not checked yet.
        "--theme.base",
        "light",
    ]
    if secrets is not None:
        command += ["--secrets.files", str(secrets.resolve())]
    return command
