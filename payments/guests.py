"""Guest ownership: a shopper without an account owns their payments through a random id in their session.

A random id (not the session key) so that it survives the session key being rotated at login.
"""

from __future__ import annotations

import uuid

SESSION_KEY = "payments_guest_id"


def guest_id_from_session(session) -> uuid.UUID | None:
    raw = session.get(SESSION_KEY)
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def guest_id_ensure(session) -> uuid.UUID:
    existing = guest_id_from_session(session)
    if existing is not None:
        return existing
    created = uuid.uuid4()
    session[SESSION_KEY] = str(created)
    return created
