"""Sign-in in the app: who is using it, the sign-in screen, and the administrator's token.

With an `[auth]` section in `.streamlit/secrets.toml`, everyone signs in through OpenID Connect
(`st.login`) before anything else. Without it, the app stays open and one shared "local" identity is
administrator only from 127.0.0.1 (PTCE_LOCAL_ADMIN) or once PTCE_ADMIN_TOKEN has been typed.
"""

from __future__ import annotations

import streamlit as st

from ptce_assistant.access import (
    Person,
    admin_token_matches,
    admin_token_usable,
    local_person,
    sign_in_expired,
    signed_in_person,
)
from ptce_assistant.config import get_settings
from ptce_assistant.errors import PtceError

# Set only by this module after checking the token: no widget has this key, so no browser sets it.
TOKEN_VERIFIED = "_ptce_admin_token_verified"
TOKEN_INPUT = "admin-token"


def sign_in_enabled() -> bool:
    """Sign-in is on when the secrets (`.streamlit/secrets.toml`, or `ptce app --secrets`) have `[auth]`."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def client_address() -> str | None:
    """The visitor's IP address as the server saw it; None when unknown (never counted as local).

    `st.context.ip_address` reports localhost and "unknown" alike as None: the session's own
    connection tells them apart.
    """
    try:
        from streamlit.runtime.context import _get_client_context
    except ImportError:  # a Streamlit without it: fail closed
        return None
    context = _get_client_context()
    address = getattr(context, "remote_ip", None) if context is not None else None
    return address if isinstance(address, str) else None


def current_person() -> Person:
    """Who is using this session, as decided on the server. Raises PtceError when signed out."""
    settings = get_settings()
    if not sign_in_enabled():
        return local_person(client_address(), st.session_state.get(TOKEN_VERIFIED) is True, settings)
    if not st.user.is_logged_in:
        raise PtceError("vous n'êtes pas connecté : reconnectez-vous")
    claims = st.user.to_dict()
    if sign_in_expired(claims, settings):
        raise PtceError("votre session a expiré : reconnectez-vous")
    return signed_in_person(claims, settings)


def sign_in_screen(title: str, reason: str | None = None) -> None:
    """The only thing a signed-out visitor sees: the title, why, and « Se connecter ». Stops the page."""
    st.title(title)
    if reason:
        st.warning(reason[0].upper() + reason[1:] + ".")
    st.info("Connectez-vous avec votre compte professionnel pour utiliser l'assistant.")
    st.button("Se connecter", type="primary", icon=":material/login:", on_click=st.login)
    st.stop()


def guard(title: str) -> Person:
    """Called first by every page: the sign-in screen if needed, else the person using the app."""
    try:
        return current_person()
    except PtceError as exc:
        reason = None if sign_in_enabled() and not st.user.is_logged_in else str(exc)
        sign_in_screen(title, reason)
    raise AssertionError("unreachable")  # st.stop() raises


def token_form() -> None:
    """Without sign-in, away from 127.0.0.1: the administrator's token unlocks the changes for this session."""
    if sign_in_enabled() or not admin_token_usable(get_settings()):
        return
    with st.form("admin-token-form", clear_on_submit=True, border=True):
        typed = st.text_input("Jeton administrateur (PTCE_ADMIN_TOKEN)", type="password", key=TOKEN_INPUT)
        if st.form_submit_button("Déverrouiller"):
            if admin_token_matches(typed, get_settings()):
                st.session_state[TOKEN_VERIFIED] = True
                st.rerun()
            st.error("Jeton refusé.")
