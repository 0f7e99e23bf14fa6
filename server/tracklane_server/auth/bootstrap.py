"""First start with auth enabled: an ``admin`` user and a token, so somebody can get in.

The secret is ``--auth-bootstrap-token`` / TRACKLANE_AUTH_BOOTSTRAP_TOKEN when set (automation,
tests), else generated and written once to ``<data_dir>/admin-token`` (mode 0600). The log names
the file, never the token. Later starts find users and do nothing; with several workers or
replicas starting at once, one wins and the others find the user it made.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tracklane.exceptions import AlreadyExists
from tracklane_server.identity import tokens
from tracklane_server.store.users import UsersStore

log = logging.getLogger("tracklane_server.auth")

ADMIN_NAME = "admin"
TOKEN_FILE_NAME = "admin-token"
BOOTSTRAP_TOKEN_SOURCE = "auth_bootstrap_token"


def bootstrap_admin(users: UsersStore, data_dir: Path, supplied_secret: str = "") -> Path | None:
    """Creates ``admin`` and its token when there are no users yet.

    Returns:
        The token file written, or None (users existed, or the secret was supplied).

    Raises:
        InvalidArgument: the supplied secret is too short or not printable ASCII.
    """
    if supplied_secret:
        tokens.check_supplied_secret(supplied_secret, BOOTSTRAP_TOKEN_SOURCE)
    if users.count_users():
        return None
    if supplied_secret:
        try:
            users.create_user_with_token(ADMIN_NAME, is_admin=True, secret=supplied_secret)
        except AlreadyExists:  # another worker or replica bootstrapped first
            return None
        log.info("created user %r with the bootstrap token given in the settings", ADMIN_NAME)
        return None
    secret = tokens.new_secret()
    path = data_dir / TOKEN_FILE_NAME
    # The file is written before the user commits: a full disk must not leave an admin nobody can use.
    temporary = _write_private(path.with_name(f".{path.name}.{os.getpid()}"), secret + "\n")
    try:
        users.create_user_with_token(ADMIN_NAME, is_admin=True, secret=secret)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, AlreadyExists):
            return None
        raise
    os.replace(temporary, path)
    log.warning(
        "created user %r; its token is in %s (readable by this account only): "
        "use it, create your own tokens, then delete the file",
        ADMIN_NAME,
        path,
        extra={"path": str(path)},
    )
    return path


def _write_private(path: Path, text: str) -> Path:
    """Writes a file only this account can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not narrow a file that already existed
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
