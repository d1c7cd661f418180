"""`ptce app` and `ptce serve-llm`: start the web app, or serve the local model to several app instances."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ptce_assistant.cli.common import EXIT_USAGE, console, errors, shown, user_errors
from ptce_assistant.config import get_settings


def run_app(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port HTTP.")] = 8501,
    host: Annotated[
        str, typer.Option("--host", help="Adresse d'écoute (127.0.0.1 : cette machine seule).")
    ] = "127.0.0.1",
    secrets: Annotated[
        Path | None,
        typer.Option(
            "--secrets",
            help="Fichier secrets.toml (section [auth] : connexion OpenID Connect). "
            "Défaut : .streamlit/secrets.toml du dossier courant.",
        ),
    ] = None,
) -> None:
    """Lancer l'application web Streamlit (chat, leviers, documents)."""
    from ptce_assistant.access import MIN_ADMIN_TOKEN_CHARS, admin_token_usable
    from ptce_assistant.app_server import app_command

    if secrets is not None and not secrets.is_file():
        errors.print(f"{shown(str(secrets))} : fichier de secrets introuvable.", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    settings = get_settings()
    command = app_command(settings, host, port, secrets)
    if settings.admin_token is not None and not admin_token_usable(settings):
        errors.print(
            f"[yellow]PTCE_ADMIN_TOKEN ignoré :[/yellow] {MIN_ADMIN_TOKEN_CHARS} caractères au moins "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))").',
            highlight=False,
        )
    console.print(f"Application : http://{host}:{port}  (Ctrl-C pour arrêter)", highlight=False)
    sys.stdout.flush()
    # Replaced by Streamlit (no child process): signals reach the server and nothing is left orphaned.
    os.execv(sys.executable, command)


def serve_llm(
    host: Annotated[
        str | None, typer.Option("--host", help="Adresse d'écoute (défaut : celle de PTCE_OPENAI_BASE_URL).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port (défaut : celui de PTCE_OPENAI_BASE_URL, sinon 8080)."),
    ] = None,
) -> None:
    """Servir le modèle local en API OpenAI : plusieurs instances de l'application partagent un modèle chargé."""
    from ptce_assistant.llm_server import SERVED_MODEL, listen_address, server_command, server_environment

    settings = get_settings()
    default_host, default_port = listen_address(settings)
    host, port = host or default_host, port or default_port
    with user_errors():
        command = server_command(settings, host, port)
    key = "avec la clé PTCE_OPENAI_API_KEY" if settings.openai_api_key else "sans clé (PTCE_OPENAI_API_KEY vide)"
    console.print(
        f"Modèle « {SERVED_MODEL} » servi sur http://{host}:{port}/v1 {key} (Ctrl-C pour arrêter)", highlight=False
    )
    console.print(
        f"Application : PTCE_LLM=openai PTCE_OPENAI_BASE_URL=http://{host}:{port}/v1 PTCE_OPENAI_MODEL={SERVED_MODEL}",
        highlight=False,
    )
    sys.stdout.flush()
    # Replaced by the server (no child process): signals reach it and nothing is left orphaned.
    os.execve(command[0], command, server_environment(settings))
