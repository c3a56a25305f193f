"""What the content and order routers share: entity, page and history responses (an
entity with its ``ETag``), the request's unit of work (`unit_of_work`), `EntityApi` (an
entity's service, change and read dependencies, and its get and history routes), the
`Change` every change handler applies (one path: the service's step, then commit), the
409 problem of a transition the state does not allow, and the 412 of an ``If-Match`` the
entity no longer matches.

A request of these routes has one `UnitOfWork`, made on first use and closed by
`EntityRoute` when the handler returns or raises (rolling back whatever was not
committed). It holds no connection until a statement needs one, and no transaction until
the first write: a read opens no session and begins nothing.

`EntityRoute` answers an ``InvalidTransitionError`` with a problem that names the current
state and the actions allowed from it, as text (``detail``) and as extension members
(``state``, ``action``, ``allowed_actions``), so a client can show what to do next.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar, overload

from fastapi import APIRouter, Depends, params
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, JsonValue
from starlette.requests import Request
from starlette.responses import Response

from rustok_core.error import ProblemDetails
from rustok_core.state_machine import Entity, InvalidTransitionError, State, TransitionRecord
from rustok_server.db import UnitOfWork
from rustok_server.errors import PreconditionFailedError
from rustok_server.http.pagination import Cursor
from rustok_server.http.preconditions import IfMatch, etag, expected_version, parse_if_match
from rustok_server.http.problems import (
    REQUEST_ID_HEADER,
    problem_for,
    problem_response,
    problem_responses,
    problem_type_base_of,
    request_id,
)

__all__ = [
    "BareStep",
    "Change",
    "EntityApi",
    "EntityOut",
    "EntityRef",
    "EntityRoute",
    "EntityService",
    "HistoryOut",
    "PageOut",
    "ServiceClass",
    "Step",
    "TransitionOut",
    "documented",
    "entity_response",
    "history_response",
    "json_response",
    "page_response",
    "unit_of_work",
]

_UNIT: Final = "rustok.unit_of_work"  # the request's unit of work, in the ASGI scope

S = TypeVar("S")
T = TypeVar("T")
B = TypeVar("B")
B_contra = TypeVar("B_contra", contravariant=True)


class EntityOut(BaseModel):
    """What every entity answer holds besides its own fields, its ``state`` name and that
    state's ``state_data`` (each entity declares those)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    version: int = Field(description="Plus one per change; also sent as the ETag.")
    created_at: datetime
    updated_at: datetime


class PageOut(BaseModel, Generic[T]):
    """One page of a list, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None


class TransitionOut(BaseModel):
    """One entry of a history: a transition, the version it produced, what it recorded."""

    entity_type: str
    entity_id: uuid.UUID
    tenant_id: uuid.UUID
    trigger: str
    from_state: str
    to_state: str
    at: datetime
    version: int
    actor: str | None
    data: dict[str, JsonValue]


class HistoryOut(BaseModel):
    """An entity's transitions, oldest first."""

    items: list[TransitionOut]


def json_response(
    data: object, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response (no second validation pass over the data)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code, dict(headers or {}), media_type="application/json")


def entity_response(
    entity: Entity[State], *, status_code: int = 200, location: str | None = None
) -> Response:
    """The entity as JSON (fields, ``state``, ``state_data``, ``version``) with its ``ETag``."""
    headers = {"ETag": etag(entity.version)}
    if location is not None:
        headers["Location"] = location
    return json_response(entity.to_data(), status_code=status_code, headers=headers)


class Step(Protocol[B_contra]):
    """A service's transition with a body: ``OrderService.ship`` bound to its service."""

    def __call__(
        self,
        tenant_id: uuid.UUID,
        entity_id: uuid.UUID,
        body: B_contra,
        /,
        *,
        actor: str | None,
        expected_version: frozenset[int] | None,
    ) -> Awaitable[Entity[State]]: ...


class BareStep(Protocol):
    """A service's transition without a body: ``NodeService.publish`` bound to its service."""

    def __call__(
        self,
        tenant_id: uuid.UUID,
        entity_id: uuid.UUID,
        /,
        *,
        actor: str | None,
        expected_version: frozenset[int] | None,
    ) -> Awaitable[Entity[State]]: ...


@dataclass(frozen=True, slots=True)
class Change(Generic[S]):
    """What a handler that changes one entity gets from its feature's dependency.

    Attributes:
        tenant_id: the request's tenant.
        entity_id: the entity the request changes (its path parameter).
        service: the domain service over the request's unit of work.
        expected_version: the versions the change may start from, by ``If-Match``
            (``None``: any), for the service's ``expected_version``; nothing is read to
            know them.
        actor: who acts, for the transition's history row.
        unit: the request's unit of work, committed by `commit`.
    """

    tenant_id: uuid.UUID
    entity_id: uuid.UUID
    service: S
    expected_version: frozenset[int] | None
    actor: str | None
    unit: UnitOfWork

    async def commit(self, entity: Entity[State]) -> Response:
        """Commit the unit of work (the entity's change and its record), then answer
        with the entity and its ``ETag``."""
        await self.unit.commit()
        return entity_response(entity)

    @overload
    async def apply(self, step: BareStep, /) -> Response: ...

    @overload
    async def apply(self, step: Step[B], body: B, /) -> Response: ...

    async def apply(
        self, step: Callable[..., Awaitable[Entity[State]]], /, *body: object
    ) -> Response:
        """The one path of every change handler: run the service's ``step`` on the entity
        (with the request's ``body``, if the step takes one), the actor and the
        ``If-Match`` versions, then `commit` and answer with the entity.

        Example::

            return await change.apply(change.service.ship, body)
        """
        entity = await step(
            self.tenant_id,
            self.entity_id,
            *body,
            actor=self.actor,
            expected_version=self.expected_version,
        )
        return await self.commit(entity)


def unit_of_work(request: Request) -> UnitOfWork:
    """The request's unit of work, made on first use (also a FastAPI dependency); the
    route (`EntityRoute`) closes it."""
    scope = request.scope
    unit: UnitOfWork | None = scope.get(_UNIT)
    if unit is None:
        scope[_UNIT] = unit = UnitOfWork(request.app.state.database)
    return unit


class EntityService(Protocol):
    """What the shared routes ask of a domain service (`NodeService`, `OrderService`)."""

    async def get(self, tenant_id: uuid.UUID, entity_id: uuid.UUID, /) -> Entity[State]:
        """The tenant's entity (its not-found error otherwise)."""
        ...

    async def history(
        self, tenant_id: uuid.UUID, entity_id: uuid.UUID, /
    ) -> Sequence[TransitionRecord]:
        """The entity's transition records, oldest first."""
        ...


class _Tenant(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


ES = TypeVar("ES", bound=EntityService)
ES_co = TypeVar("ES_co", bound=EntityService, covariant=True)
R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


class ServiceClass(Protocol[R_contra, ES_co]):
    """A domain service's class: made over a repository, told of each transition."""

    def __call__(
        self,
        repository: R_contra,
        /,
        *,
        on_transition: Callable[[TransitionRecord], None] | None = ...,
    ) -> ES_co: ...


class _PathDependency(Generic[T]):
    """A FastAPI dependency that reads the entity id from the path parameter ``id_name``
    (``order_id``), which the API documents under that name, and optionally ``If-Match``.

    Its signature is written for FastAPI (``__signature__``): the parameter takes the
    feature's name, and FastAPI passes it by that name into ``path``.
    """

    def __init__(
        self,
        build: Callable[[Request, uuid.UUID, str | None], Awaitable[T]],
        id_name: str,
        *,
        if_match: bool,
    ) -> None:
        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = [
            inspect.Parameter("request", keyword, annotation=Request),
            inspect.Parameter(id_name, keyword, annotation=uuid.UUID),
        ]
        if if_match:
            parameters.append(
                inspect.Parameter("if_match", keyword, default=None, annotation=IfMatch)
            )
        self.__signature__: inspect.Signature = inspect.Signature(parameters)
        self._build = build
        self._id_name = id_name

    async def __call__(self, request: Request, if_match: str | None = None, **path: uuid.UUID) -> T:
        return await self._build(request, path[self._id_name], if_match)


@dataclass(frozen=True, slots=True)
class EntityRef(Generic[S]):
    """What a read of one entity gets from its feature's dependency.

    Attributes:
        tenant_id: the request's tenant.
        entity_id: the entity read (its path parameter).
        service: the domain service over the request's unit of work.
    """

    tenant_id: uuid.UUID
    entity_id: uuid.UUID
    service: S


class EntityApi(Generic[ES]):
    """The dependencies of one entity's routes, and its get and history routes, written
    once for nodes and orders.

    Args:
        id_name: the path parameter naming the entity (``"order_id"``).
        service: the domain service's class (``OrderService``), made per request over
            ``repository`` with its transitions counted in the server's metrics.
        repository: the SQL repository's class (``SqlOrderRepository``), made over the
            request's unit of work.
        tenant: the dependency that gives the request's tenant.
        actor: the dependency that gives the request's actor.

    Attributes:
        change: the dependency of a change of one entity (`Change`).
        read: the dependency of a read of one entity (`EntityRef`).
    """

    def __init__(
        self,
        id_name: str,
        service: ServiceClass[R, ES],
        repository: Callable[[UnitOfWork], R],
        *,
        tenant: Callable[[Request], Awaitable[_Tenant]],
        actor: Callable[[Request], Awaitable[str | None]],
    ) -> None:
        self.id_name = id_name
        self._service_class = service
        self._repository = repository
        self._tenant = tenant
        self._actor = actor
        self.change: _PathDependency[Change[ES]] = _PathDependency(
            self._change, id_name, if_match=True
        )
        self.read: _PathDependency[EntityRef[ES]] = _PathDependency(
            self._read, id_name, if_match=False
        )

    async def service(self, request: Request) -> ES:
        """FastAPI dependency: the domain service over this request's unit of work, its
        transitions counted in the server's metrics."""
        counted: Callable[[TransitionRecord], None] = request.app.state.metrics.count_transition
        return self._service_class(self._repository(unit_of_work(request)), on_transition=counted)

    async def _change(
        self, request: Request, entity_id: uuid.UUID, if_match: str | None
    ) -> Change[ES]:
        tenant = await self._tenant(request)
        return Change(
            tenant.id,
            entity_id,
            await self.service(request),
            expected_version(if_match),
            await self._actor(request),
            unit_of_work(request),
        )

    async def _read(self, request: Request, entity_id: uuid.UUID, _: str | None) -> EntityRef[ES]:
        tenant = await self._tenant(request)
        return EntityRef(tenant.id, entity_id, await self.service(request))

    def add_reads(
        self,
        router: APIRouter,
        *,
        noun: str,
        out: type[BaseModel],
        ok: str,
        dependencies: Sequence[params.Depends],
    ) -> None:
        """Add ``GET /{id}`` (``get_<noun>``) and ``GET /{id}/history``
        (``<noun>_history``) to ``router``."""
        path = f"/{{{self.id_name}}}"

        async def get(entity: EntityRef[ES] = Depends(self.read)) -> Response:  # noqa: B008
            return entity_response(await entity.service.get(entity.tenant_id, entity.entity_id))

        async def history(entity: EntityRef[ES] = Depends(self.read)) -> Response:  # noqa: B008
            found = await entity.service.history(entity.tenant_id, entity.entity_id)
            return history_response(found)

        article = _article(noun)
        routes = (
            (
                path,
                get,
                f"get_{noun}",
                f"Get {article} {noun}",
                f"The {noun}, with its state and that state's data.",
                documented(out, ok, 404),
            ),
            (
                f"{path}/history",
                history,
                f"{noun}_history",
                f"{article.capitalize()} {noun}'s transitions",
                f"Every transition of the {noun}, oldest first.",
                documented(HistoryOut, "The transitions, oldest first.", 404),
            ),
        )
        for route_path, endpoint, name, summary, description, responses in routes:
            router.add_api_route(
                route_path,
                endpoint,
                methods=["GET"],
                name=name,
                dependencies=dependencies,
                summary=summary,
                description=description,
                responses=responses,
            )


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def page_response(
    items: Sequence[Entity[State]], next_after: tuple[datetime, uuid.UUID] | None
) -> Response:
    """One page of a list: the entities and the cursor of the next page (``null`` last)."""
    return json_response(
        {"items": [item.to_data() for item in items], "next_cursor": Cursor.of(next_after)}
    )


def history_response(records: Iterable[TransitionRecord]) -> Response:
    """An entity's transition records, oldest first."""
    return json_response({"items": [record.to_data() for record in records]})


def documented(
    model: type[BaseModel], description: str, *problems: int, status: int = 200
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=``: ``model`` for ``status``, problem bodies for ``problems``."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": model, "description": description}
    }
    responses.update(problem_responses(*problems))
    return responses


class EntityRoute(APIRoute):
    """A route whose ``InvalidTransitionError`` becomes a 409 problem naming the state and the
    allowed actions, whose version conflict becomes a 412 when ``If-Match`` named versions
    (and stays a 409 otherwise: a change lost a race), and whose unit of work
    (`unit_of_work`) is closed once the handler returns or raises: anything it did not
    commit is rolled back.

    Subclasses name the entity as the API's text does in `noun` (``"node"``), rename
    machine triggers to the API's actions in `actions` (an order's ``cancel_with_refund``
    is the ``/cancel`` endpoint), and name their domain's `version_conflict` error (it
    carries the stored version as ``actual_version``).
    """

    noun: ClassVar[str] = "entity"
    actions: ClassVar[Mapping[str, str]] = {}
    version_conflict: ClassVar[type[Exception] | tuple[type[Exception], ...]] = ()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        noun, actions, conflict = self.noun, self.actions, self.version_conflict

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except InvalidTransitionError as exc:
                return _transition_problem(request, exc, noun, actions)
            except conflict as exc:
                failed = _precondition_failed(request, exc, noun)
                if failed is None:
                    raise
                raise failed from exc
            finally:
                unit: UnitOfWork | None = request.scope.pop(_UNIT, None)
                if unit is not None:
                    await unit.close()

        return handle


def _precondition_failed(
    request: Request, conflict: Exception, noun: str
) -> PreconditionFailedError | None:
    """The 412 of a version conflict when ``If-Match`` named versions; ``None`` otherwise
    (no ``If-Match``, or ``*``: the conflict is a lost race, a 409)."""
    if_match = request.headers.get("if-match")
    current = getattr(conflict, "actual_version", None)
    if if_match is None or not isinstance(current, int) or parse_if_match(if_match) is None:
        return None
    return PreconditionFailedError(noun, if_match, current)


def _transition_problem(
    request: Request, exc: InvalidTransitionError, noun: str, actions: Mapping[str, str]
) -> Response:
    rid = request_id(request)
    action = actions.get(exc.trigger, exc.trigger)
    allowed = sorted({actions.get(t, t) for t in exc.allowed})
    allowed_text = ", ".join(allowed) if allowed else "none (final state)"
    detail = (
        f"Cannot {action} this {noun}: it is {exc.from_state}. "
        f"Allowed from {exc.from_state}: {allowed_text}."
    )
    type_base = problem_type_base_of(request)
    problem = problem_for(exc, instance=request.url.path, trace_id=rid, type_base=type_base)
    base = problem.to_dict()
    base.update(detail=detail, state=exc.from_state, action=action, allowed_actions=allowed)
    headers = {REQUEST_ID_HEADER: rid} if rid else None
    return problem_response(ProblemDetails.model_validate(base), headers=headers)
