"""gRPC ``mint.auth.v1.AuthService``: user administration for the admin service (internal only).

Each RPC parses its request, opens a unit of work and calls one use case; refusals are domain
errors the kit's interceptor answers with the status of their kind and the code as details
(``user_not_found`` → NOT_FOUND, ``invalid_role`` → INVALID_ARGUMENT, …).
"""

from __future__ import annotations

import grpc

from mint.auth import actions, domain
from mint.auth.models import User
from mint.auth.v1 import auth_pb2, auth_pb2_grpc
from mint.kit.db import Database
from mint.kit.time import rfc3339

FULL_NAME = "mint.auth.v1.AuthService"


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


def actor(raw: str) -> str:
    """``ce_actor`` of the change: the admin who acts, else ``system``."""
    return raw.strip() or actions.SYSTEM


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    def GetUser(
        self, request: auth_pb2.GetUserRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            return user_message(actions.get_user(session, user_id))

    def GetStatus(
        self, request: auth_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> auth_pb2.UserStatus:
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            user = actions.get_user(session, user_id)
            return auth_pb2.UserStatus(
                user_id=str(user.id),
                role=user.role,
                status=user.status,
                email_verified=user.email_verified,
            )

    def SearchUsers(
        self, request: auth_pb2.SearchUsersRequest, context: grpc.ServicerContext
    ) -> auth_pb2.SearchUsersResponse:
        where = domain.user_filter(request.query, request.status, request.role, request.page_size)
        with self.db.session() as session:
            users, next_token = actions.search_users(session, where, request.page_token)
            return auth_pb2.SearchUsersResponse(
                users=[user_message(u) for u in users], next_page_token=next_token or ""
            )

    def SetRole(
        self, request: auth_pb2.SetRoleRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        role = domain.parse_role(request.role)
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            user = actions.set_role(session, user_id, role, actor(request.actor_id))
            return user_message(user)

    def Freeze(
        self, request: auth_pb2.FreezeRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        reason = domain.freeze_reason(request.reason)  # refused before the user id is read
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            user = actions.freeze(session, user_id, reason, actor(request.actor_id))
            return user_message(user)

    def Unfreeze(
        self, request: auth_pb2.UnfreezeRequest, context: grpc.ServicerContext
    ) -> auth_pb2.User:
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            return user_message(actions.unfreeze(session, user_id, actor(request.actor_id)))
