"""Start-up chores for authentication, done once before any worker starts."""

from __future__ import annotations

import logging

from dockyard.auth.keys import SigningKeys
from dockyard.auth.passwords import hash_password
from dockyard.metadata import accounts
from dockyard.metadata.engine import create_sync_engine
from dockyard.settings import Settings

logger = logging.getLogger(__name__)


def prepare_auth(settings: Settings) -> None:
    """Create the first signing key, and the administrator when one is configured.

    The administrator's password comes from `auth.admin_password` (for example
    the DOCKYARD_AUTH_ADMIN_PASSWORD variable); it is set again at every start,
    so changing the variable and restarting resets a lost password.
    """
    SigningKeys(settings.keys_dir).load(create=True)
    password = settings.auth.admin_password
    if not password:
        return
    username = settings.auth.admin_username
    engine = create_sync_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            hashed = hash_password(password)
            if accounts.get_user(conn, username) is None:
                accounts.create_user(conn, username, hashed, is_admin=True)
                logger.info("administrator created", extra={"username": username})
            else:
                accounts.update_user(
                    conn, username, password_hash=hashed, is_admin=True
                )
    finally:
        engine.dispose()
