"""``mint.auth.v1.AuthService``: user administration for the admin service (internal only)."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

import grpc
from sqlalchemy.orm import Session

from mint.auth import store
from mint.auth.domain import Role, UserStatus, has_control_chars, rfc3339
from mint.auth.models import User
from mint.auth.v1 import auth_pb2, auth_pb2_grpc
from mint.kit.service import ServiceContext

FULL_NAME = "mint.auth.v1.AuthService"
MAX_PAGE = 100
DEFAULT_PAGE = 20
REASON_MAX = 500


def user_message(user: User) -> auth_pb2.User:
    return auth_pb2.User(
        id=str(user.id),
        email=user.email,
        name=user.name,
        role=user.role,
        email_verified=user.email_verified,
        status=user.status,
        created_at=rfc3339(user.created_at),
        updated_at=rfc3339(user.updated_at),
    )


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("unreachable")  # abort raises


def _user_id(raw: str, context: grpc.ServicerContext) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_user_id")


def _actor(raw: str) -> str:
    return raw.strip() or "system"


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.db = ctx.database()

    def _load(self, session: Session, raw_id: str, context: Any, *, lock: bool = False) -> User:
        user = store.get_user(session, _user_id(raw_id, context), lock=lock)
        if user is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, "user_not_found")
        return user

    def GetUser(self, request: auth_pb2.GetUserRequest, context: Any) -> auth_pb2.User:
        with self.db.session() as session:
            return user_message(self._load(session, request.user_id, context))

    def GetStatus(self, request: auth_pb2.GetStatusRequest, context: Any) -> auth_pb2.UserStatus:
        with self.db.session() as session:
            user = self._load(session, request.user_id, context)
            return auth_pb2.UserStatus(
                user_id=str(user.id),
                role=user.role,
                status=user.status,
                email_verified=user.email_verified,
            )

    def SearchUsers(
        self, request: auth_pb2.SearchUsersRequest, context: Any
    ) -> auth_pb2.SearchUsersResponse:
        if request.status and request.status not in {s.value for s in UserStatus}:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_status")
        if request.role and request.role not in {r.value for r in Role}:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_role")
        if request.page_size < 0 or request.page_size > MAX_PAGE:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_page_size")
        with self.db.session() as session:
            try:
                users, next_cursor = store.search_users(
                    session,
                    query=request.query[:254].replace("\x00", ""),
                    status=request.status,
                    role=request.role,
                    limit=request.page_size or DEFAULT_PAGE,
                    cursor=request.page_token,
                )
            except ValueError:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_page_token")
            return auth_pb2.SearchUsersResponse(
                users=[user_message(u) for u in users], next_page_token=next_cursor or ""
            )

    def SetRole(self, request: auth_pb2.SetRoleRequest, context: Any) -> auth_pb2.User:
        if request.role not in {r.value for r in Role}:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_role")
        with self.db.session() as session:
            user = self._load(session, request.user_id, context, lock=True)
            if user.role != request.role:
                user.role = request.role
                store.revoke_user_families(session, user.id, "role_changed")
                store.emit_auth_event(
                    session,
                    "auth.role_changed",
                    user.id,
                    {"user_id": str(user.id), "role": user.role},
                    actor=_actor(request.actor_id),
                )
                session.flush()
            return user_message(user)

    def Freeze(self, request: auth_pb2.FreezeRequest, context: Any) -> auth_pb2.User:
        reason = request.reason.strip()
        if not reason or len(reason) > REASON_MAX or has_control_chars(reason):
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_reason")
        with self.db.session() as session:
            user = self._load(session, request.user_id, context, lock=True)
            if user.status != UserStatus.FROZEN.value:
                user.status = UserStatus.FROZEN.value
                store.revoke_user_families(session, user.id, "frozen")
                store.emit_auth_event(
                    session,
                    "auth.user_frozen",
                    user.id,
                    {"user_id": str(user.id), "reason": reason},
                    actor=_actor(request.actor_id),
                )
                session.flush()
            return user_message(user)

    def Unfreeze(self, request: auth_pb2.UnfreezeRequest, context: Any) -> auth_pb2.User:
        with self.db.session() as session:
            user = self._load(session, request.user_id, context, lock=True)
            if user.status != UserStatus.ACTIVE.value:
                user.status = UserStatus.ACTIVE.value
                store.revoke_user_families(session, user.id, "unfrozen")
                store.emit_auth_event(
                    session,
                    "auth.user_unfrozen",
                    user.id,
                    {"user_id": str(user.id)},
                    actor=_actor(request.actor_id),
                )
                session.flush()
            return user_message(user)
