"""People: user accounts, passwords, lockout, server-side sessions, and the one actor that
people and programs share.

Passwords are hashed with argon2id (``argon2-cffi``) at RFC 9106's second recommended
profile, the library's default: 3 passes over 64 MiB with 4 lanes, a 16-byte salt and a
32-byte tag. The parameters are written into each stored hash, so raising them later rehashes
each password at its owner's next sign-in. A sign-in for an unknown name is checked against a
dummy hash, so it takes as long as one for a real name.

A session is a random 256-bit token in the browser's cookie; the database keeps its SHA-256
(a stolen database signs nobody in), the SHA-256 of the session's CSRF token, when it was
last seen (the idle timeout) and when it expires (the absolute lifetime). Disabling a user or
changing their password ends their sessions.

Every change — and every sign-in, refused or not — is written to the audit trail in the
change's own transaction, never with a password or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update

from hashwatch.errors import ConfigError, SignInError, UserNotFoundError
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.models import utcnow
from hashwatch.store.service import GrantAccess, Role
from hashwatch.store.user_models import SESSIONS, USERS, UserRole

__all__ = [
    "MIN_PASSWORD",
    "Actor",
    "Need",
    "NewSession",
    "SessionInfo",
    "UserInfo",
    "UserPolicy",
    "UserRole",
    "UserStore",
    "allowed",
    "may_read_feed",
]

MIN_PASSWORD = 10  # characters
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a sign-in cheap to refuse
# The actor of a refused sign-in: nobody is signed in (not the server's operating-system user).
ANONYMOUS = "anonymous"
SIGN_IN_REFUSED = "unknown name or wrong password, or the account is locked or disabled"

Need = Role | UserRole  # what a route asks for: a service key's role or a person's


@dataclass(frozen=True)
class Actor:
    """Whoever makes a request — an API key or a signed-in person — and what it may do.

    ``name`` is what the audit trail records: the key's name for a service key, the user's
    name for a person (signed in, or through a key of theirs)."""

    key_id: int  # the API key it came with; 0 for a signed-in session
    name: str
    role: Role | UserRole
    user_id: int | None = None
    session_id: str | None = None  # the stored id (SHA-256) of its session, if signed in
    grants: Mapping[str, str] = field(default_factory=dict)  # a peer key's: list -> access

    @property
    def is_person(self) -> bool:
        return isinstance(self.role, UserRole)


def allowed(actor: Actor, needed: Need) -> bool:
    """Whether ``actor`` may do what needs ``needed``. Service keys and people are separate
    ladders: a matcher, curator or admin key reaches the matching and list API by its rank; a
    reviewer, lead or admin person (or their key) reaches what the review workspace needs
    by theirs. A matcher key asking for a reviewer's route is refused, and so is a person
    asking for a service route."""
    if isinstance(needed, UserRole):
        return isinstance(actor.role, UserRole) and actor.role.allows(needed)
    return isinstance(actor.role, Role) and actor.role.allows(needed)


def may_read_feed(actor: Actor, list_name: str) -> bool:
    """Whether ``actor`` may read the published feed of ``list_name``: a curator or admin
    key, or a peer key granted that list's feed (a ``query`` grant is not enough: it lets
    the peer match against the list, never read it)."""
    if not isinstance(actor.role, Role):
        return False
    if actor.role is Role.PEER:
        return actor.grants.get(list_name) == GrantAccess.FEED.value
    return actor.role.allows(Role.CURATOR)


@dataclass(frozen=True)
class UserPolicy:
    """Sign-in rules (``ServeSettings``: ``login_max_failures``, ``login_lockout_s``,
    ``session_idle_s``, ``session_lifetime_s``)."""

    max_failures: int = 5  # wrong passwords in a row before the account locks
    lockout_s: float = 15 * 60.0
    session_idle_s: float = 30 * 60.0  # a session unused this long ends
    session_lifetime_s: float = 12 * 3600.0  # a session ends this long after sign-in
    touch_s: float = 30.0  # last-seen is written at most this often (idle granularity)


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: UserRole
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "disabled": self.disabled,
            "failed_attempts": self.failed_attempts,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class SessionInfo:
    id: str  # SHA-256 of the cookie token
    user: UserInfo
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    csrf_sha256: str

    def actor(self) -> Actor:
        return Actor(0, self.user.name, self.user.role, self.user.id, self.id)

    def csrf_matches(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (compared in constant time)."""
        return bool(token) and hmac.compare_digest(self.csrf_sha256, _sha256(token or ""))


@dataclass(frozen=True)
class NewSession:
    """A session just opened: both tokens are handed to the browser once, never stored."""

    token: str
    csrf_token: str
    info: SessionInfo


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes of what was stored in UTC."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)


def _user(row: Any) -> UserInfo:
    return UserInfo(
        int(row.id),
        row.name,
        UserRole(row.role),
        bool(row.disabled),
        int(row.failed_attempts),
        _aware(row.locked_until),
        _aware(row.created_at) or utcnow(),
        _aware(row.updated_at) or utcnow(),
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"a password has at most {MAX_PASSWORD} characters")


class UserStore:
    """User accounts and sessions of one database. ``clock`` (UTC now) is a seam for the
    idle and lockout timers."""

    def __init__(
        self,
        db: Database,
        policy: UserPolicy | None = None,
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.policy = policy or UserPolicy()
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self.clock = clock
        self._dummy: str | None = None

    # accounts

    def add(
        self, name: str, role: UserRole | str, password: str, *, actor: str | None = None
    ) -> UserInfo:
        if not name.strip() or len(name) > 200 or name != name.strip():
            raise ConfigError("a user needs a name of 1 to 200 characters, without outer spaces")
        role = UserRole(role)
        _check_password(password)
        digest = self.hasher.hash(password)
        now = self.clock()
        with self.db.begin() as conn:
            if conn.execute(select(USERS.c.id).where(USERS.c.name == name)).first() is not None:
                raise ConfigError(f"a user named {name!r} exists already")
            conn.execute(
                insert(USERS).values(
                    name=name,
                    role=role.value,
                    password_hash=digest,
                    disabled=False,
                    failed_attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            record_audit(
                conn,
                actor=actor,
                action="user.created",
                target=f"user:{name}",
                details={"role": role.value},
            )
            return _user(conn.execute(select(USERS).where(USERS.c.name == name)).one())

    def get(self, name: str) -> UserInfo:
        with self.db.read() as conn:
            row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
        if row is None:
            raise UserNotFoundError(f"no user named {name!r}")
        return _user(row)

    def all(self) -> list[UserInfo]:
        with self.db.read() as conn:
            return [_user(r) for r in conn.execute(select(USERS).order_by(USERS.c.id))]

    def _change(
        self,
        name: str,
        action: str,
        values: dict[str, Any],
        actor: str | None,
        *,
        end_sessions: bool = False,
        details: dict[str, Any] | None = None,
    ) -> UserInfo:
        with self.db.begin() as conn:
            row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
            if row is None:
                raise UserNotFoundError(f"no user named {name!r}")
            conn.execute(
                update(USERS).where(USERS.c.id == row.id).values(updated_at=self.clock(), **values)
            )
            ended = 0
            if end_sessions:
                ended = int(
                    conn.execute(delete(SESSIONS).where(SESSIONS.c.user_id == row.id)).rowcount or 0
                )
            record_audit(
                conn,
                actor=actor,
                action=action,
                target=f"user:{name}",
                details={**(details or {}), **({"sessions_ended": ended} if end_sessions else {})},
            )
            return _user(conn.execute(select(USERS).where(USERS.c.id == row.id)).one())

    def disable(self, name: str, *, actor: str | None = None) -> UserInfo:
        """Refuse the user's sign-ins and keys from now on, and end their sessions."""
        return self._change(name, "user.disabled", {"disabled": True}, actor, end_sessions=True)

    def enable(self, name: str, *, actor: str | None = None) -> UserInfo:
        return self._change(name, "user.enabled", {"disabled": False}, actor)

    def unlock(self, name: str, *, actor: str | None = None) -> UserInfo:
        """Lift a lockout before it expires (and forget the failed attempts)."""
        return self._change(
            name, "user.unlocked", {"failed_attempts": 0, "locked_until": None}, actor
        )

    def set_password(self, name: str, password: str, *, actor: str | None = None) -> UserInfo:
        """A new password; ends every session of the user (and lifts a lockout)."""
        _check_password(password)
        values = {
            "password_hash": self.hasher.hash(password),
            "failed_attempts": 0,
            "locked_until": None,
        }
        return self._change(name, "user.password_set", values, actor, end_sessions=True)

    # signing in

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerificationError, InvalidHashError):
            return False

    def authenticate(self, name: str, password: str) -> UserInfo:
        """The user if ``password`` is theirs and the account is enabled and not locked;
        else :class:`SignInError` with one message for every reason (the audit trail keeps
        the reason). ``max_failures`` wrong passwords in a row lock the account for
        ``lockout_s``; while locked, even the right password is refused."""
        now = self.clock()
        with self.db.read() as conn:
            row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
        if row is None or len(password) > MAX_PASSWORD:
            self._verify(self._dummy_hash(), password[:MAX_PASSWORD])
            with self.db.begin() as conn:
                # the attempted name is not recorded: it is sometimes a password typed early
                record_audit(
                    conn,
                    actor=ANONYMOUS,
                    action="user.sign_in_refused",
                    target=None,
                    details={"reason": "unknown user or oversized password"},
                )
            raise SignInError(SIGN_IN_REFUSED)
        locked_until = _aware(row.locked_until)
        ok = self._verify(row.password_hash, password)
        target = f"user:{row.name}"
        reason = None
        if row.disabled:
            reason = "disabled"
        elif locked_until is not None and locked_until > now:
            reason = "locked"
        elif not ok:
            reason = "wrong password"
        with self.db.begin() as conn:
            if reason is None:
                values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
                if self.hasher.check_needs_rehash(row.password_hash):
                    values["password_hash"] = self.hasher.hash(password)
                conn.execute(update(USERS).where(USERS.c.id == row.id).values(**values))
                record_audit(conn, actor=row.name, action="user.signed_in", target=target)
                return _user(conn.execute(select(USERS).where(USERS.c.id == row.id)).one())
            if reason == "wrong password":
                conn.execute(
                    update(USERS)
                    .where(USERS.c.id == row.id)
                    .values(failed_attempts=USERS.c.failed_attempts + 1)
                )
                failures = int(
                    conn.execute(
                        select(USERS.c.failed_attempts).where(USERS.c.id == row.id)
                    ).scalar_one()
                )
                if failures >= self.policy.max_failures:
                    until = now + timedelta(seconds=self.policy.lockout_s)
                    conn.execute(
                        update(USERS)
                        .where(USERS.c.id == row.id)
                        .values(failed_attempts=0, locked_until=until)
                    )
                    record_audit(
                        conn,
                        actor=ANONYMOUS,
                        action="user.locked",
                        target=target,
                        details={"failures": failures, "until": until.isoformat()},
                    )
            record_audit(
                conn,
                actor=ANONYMOUS,
                action="user.sign_in_refused",
                target=target,
                details={"reason": reason},
            )
        raise SignInError(SIGN_IN_REFUSED)

    # sessions

    def sign_in(self, name: str, password: str) -> NewSession:
        """Authenticate and open a session."""
        return self.open_session(self.authenticate(name, password))

    def open_session(self, user: UserInfo) -> NewSession:
        token = secrets.token_urlsafe(32)
        csrf = self.csrf_token_of(token)
        now = self.clock()
        sid = _sha256(token)
        expires = now + timedelta(seconds=self.policy.session_lifetime_s)
        with self.db.begin() as conn:
            conn.execute(
                insert(SESSIONS).values(
                    id=sid,
                    user_id=user.id,
                    csrf_sha256=_sha256(csrf),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                )
            )
            record_audit(
                conn,
                actor=user.name,
                action="session.opened",
                target=f"user:{user.name}",
                details={"expires_at": expires.isoformat()},
            )
        return NewSession(token, csrf, SessionInfo(sid, user, now, now, expires, _sha256(csrf)))

    @staticmethod
    def csrf_token_of(token: str) -> str:
        """The CSRF token of the session whose cookie token is ``token``: derived from it
        (HMAC-SHA-256), so a server-rendered page can put it in its forms on every request
        while the database keeps only its SHA-256. Another site can neither read the cookie
        nor the pages, so it cannot learn the token."""
        return hmac.new(token.encode("utf-8"), b"hashwatch-csrf", hashlib.sha256).hexdigest()

    def session(self, token: str) -> SessionInfo | None:
        """The live session of a cookie token, or None: unknown, past its lifetime, idle
        too long, or its user disabled. An ended session is deleted and audited."""
        if not token or len(token) > 256:
            return None
        sid = _sha256(token)
        now = self.clock()
        with self.db.read() as conn:
            row = conn.execute(select(SESSIONS).where(SESSIONS.c.id == sid)).first()
            owner = None
            if row is not None:
                owner = conn.execute(select(USERS).where(USERS.c.id == row.user_id)).first()
        if row is None or owner is None:
            return None
        user = _user(owner)
        last_seen = _aware(row.last_seen_at) or now
        expires = _aware(row.expires_at) or now
        ended = None
        if user.disabled:
            ended = "user disabled"
        elif now >= expires:
            ended = "lifetime"
        elif (now - last_seen).total_seconds() >= self.policy.session_idle_s:
            ended = "idle"
        if ended is not None:
            with self.db.begin() as conn:
                gone = conn.execute(delete(SESSIONS).where(SESSIONS.c.id == sid)).rowcount
                if gone:
                    record_audit(
                        conn,
                        actor=user.name,
                        action="session.expired",
                        target=f"user:{user.name}",
                        details={"reason": ended},
                    )
            return None
        if (now - last_seen).total_seconds() >= self.policy.touch_s:
            with self.db.begin() as conn:
                conn.execute(update(SESSIONS).where(SESSIONS.c.id == sid).values(last_seen_at=now))
            last_seen = now
        created = _aware(row.created_at) or now
        return SessionInfo(sid, user, created, last_seen, expires, row.csrf_sha256)

    def end_session(self, session_id: str, *, actor: str | None = None) -> bool:
        """Sign out: delete the session (by its stored id). False if it had ended already."""
        with self.db.begin() as conn:
            row = conn.execute(
                select(USERS.c.name)
                .join(SESSIONS, SESSIONS.c.user_id == USERS.c.id)
                .where(SESSIONS.c.id == session_id)
            ).first()
            if row is None:
                return False
            conn.execute(delete(SESSIONS).where(SESSIONS.c.id == session_id))
            record_audit(
                conn, actor=actor or row.name, action="session.ended", target=f"user:{row.name}"
            )
        return True

    def session_count(self, name: str) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(SESSIONS)
                    .join(USERS, USERS.c.id == SESSIONS.c.user_id)
                    .where(USERS.c.name == name)
                ).scalar_one()
            )
