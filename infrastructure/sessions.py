"""Django's database sessions, with a database fault while saving one answered like any other: 503 with
Retry-After (infrastructure/middleware.py), never 400 "the session was deleted". SESSION_ENGINE is this module."""

from __future__ import annotations

from django.contrib.sessions import middleware as sessions
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import UpdateError
from django.db import OperationalError

from infrastructure.middleware import database_busy_response


class SessionStore(db.SessionStore):
    """Django's database sessions, except that a session the database could not save because it is unreachable
    (a lost connection, a lock or statement timeout) says so, instead of claiming the session was deleted."""

    def save(self, must_create=False):
        try:
            return super().save(must_create=must_create)
        except UpdateError as error:
            # Django raises UpdateError for any DatabaseError of the UPDATE; a row that is really gone is a plain
            # DatabaseError ("Forced update did not affect any rows"), a broken database an OperationalError.
            if isinstance(error.__context__, OperationalError):
                raise error.__context__ from None
            raise


class SessionMiddleware(sessions.SessionMiddleware):
    """Sessions are saved after the view, outside DatabaseBusyMiddleware's reach: Django turned a database
    fault there into 400 "the session was deleted" (make chaos: a cart add when its connection was terminated).
    It is a 503 with Retry-After like any other, and the shopper's retry is safe."""

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except OperationalError as exception:
            return database_busy_response(request, exception)
