"""flagd's sync protocol (gRPC `flagd.sync.v1.FlagSyncService`) over the flags snapshot.

The official flagd providers in in-process mode (Python, JS, Go, Java, .NET) connect here, evaluate
locally, and get a new full flagd document on every change. The document is `export(serve_off=True)`:
a killed or turned-off flag arrives as ENABLED with its off variant as the static default, so it serves
the off value there too (our kill policy), not flagd's code default.

One hub follows the SSE broadcaster and encodes the document once per change; every open SyncFlags
stream then sends the newest document (a slow stream skips to the latest, never queues). Reads follow
the SSE snapshot's rule: open while no client key is configured, else `authorization: Bearer <key>`
or `x-api-key` in the call metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf.struct_pb2 import Struct  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2
from starlette.requests import HTTPConnection

from services.flags.service import FlagService
from shared.auth import Authenticator
from shared.tasks import cancel_and_wait

__all__ = ["SyncHub", "FlagSyncServicer", "serve"]

logger = logging.getLogger(__name__)
_SERVICE = "flagd.sync.v1.FlagSyncService"


class SyncHub:
    """The current flagd document, re-encoded once per change; `changed` wakes every stream."""

    def __init__(self, svc: FlagService) -> None:
        self.svc = svc
        self.version = 0
        self.document = ""
        self.changed = asyncio.Condition()
        self._encode()

    def current(self) -> str:
        """The document of the snapshot as it is now (the hub's copy may be one loop turn behind)."""
        return json.dumps(self.svc.export(serve_off=True), separators=(",", ":"))

    def _encode(self) -> None:
        self.document = self.current()
        self.version += 1

    async def run(self) -> None:
        """Follow the broadcaster; a burst of changes becomes one new document."""
        while True:
            queue = self.svc.broadcaster.subscribe()
            try:
                await self._publish()  # whatever changed before we (re)subscribed
                while await queue.get() is not None and _drain(queue):
                    await self._publish()
            finally:
                self.svc.broadcaster.unsubscribe(queue)
            await asyncio.sleep(0.05)  # dropped as too slow, or closing: subscribe again

    async def _publish(self) -> None:
        self._encode()
        async with self.changed:
            self.changed.notify_all()

    async def next(self, seen: int) -> tuple[int, str]:
        """Wait for a document newer than `seen`."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.version != seen)
            return self.version, self.document


def _drain(queue: asyncio.Queue[Any]) -> bool:
    """Take what else is queued (one document covers it); False when the end-of-stream mark was among it."""
    while not queue.empty():
        if queue.get_nowait() is None:
            return False
    return True


async def _parse(cls: Any, raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    """Requests arrive as bytes so that a malformed one is INVALID_ARGUMENT with the reason, not UNKNOWN."""
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"the request is not a {cls.DESCRIPTOR.full_name}: {exc}")


def _handlers(servicer: FlagSyncServicer) -> grpc.GenericRpcHandler:
    sync, fetch, meta = sync_pb2.SyncFlagsResponse, sync_pb2.FetchAllFlagsResponse, sync_pb2.GetMetadataResponse
    return grpc.method_handlers_generic_handler(_SERVICE, {
        "SyncFlags": grpc.unary_stream_rpc_method_handler(servicer.SyncFlags,
                                                          response_serializer=sync.SerializeToString),
        "FetchAllFlags": grpc.unary_unary_rpc_method_handler(servicer.FetchAllFlags,
                                                             response_serializer=fetch.SerializeToString),
        "GetMetadata": grpc.unary_unary_rpc_method_handler(servicer.GetMetadata,
                                                           response_serializer=meta.SerializeToString)})


class FlagSyncServicer:
    """flagd.sync.v1.FlagSyncService (the generated stubs' messages; requests parsed by `_parse`)."""

    def __init__(self, *, hub: SyncHub, auth: Authenticator) -> None:
        self.hub = hub
        self.auth = auth

    async def _admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        headers = [(k.encode(), v.encode()) for k, v in context.invocation_metadata() or ()
                   if isinstance(v, str)]
        if self.auth.reader_actor(HTTPConnection({"type": "http", "headers": headers})) is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "client key required (metadata authorization: Bearer <key>, or x-api-key)")
        if not self.hub.svc.ready:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "flags are not loaded yet; retry")

    async def SyncFlags(self, request: bytes,  # noqa: N802 - the proto's name
                        context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[sync_pb2.SyncFlagsResponse]:
        await _parse(sync_pb2.SyncFlagsRequest, request, context)
        await self._admit(context)
        seen, document = self.hub.version, self.hub.document
        while True:
            yield sync_pb2.SyncFlagsResponse(flag_configuration=document)
            seen, document = await self.hub.next(seen)

    async def FetchAllFlags(self, request: bytes,  # noqa: N802
                            context: grpc.aio.ServicerContext[Any, Any]) -> sync_pb2.FetchAllFlagsResponse:
        await _parse(sync_pb2.FetchAllFlagsRequest, request, context)
        await self._admit(context)
        return sync_pb2.FetchAllFlagsResponse(flag_configuration=self.hub.current())

    async def GetMetadata(self, request: bytes,  # noqa: N802
                          context: grpc.aio.ServicerContext[Any, Any]) -> sync_pb2.GetMetadataResponse:
        await _parse(sync_pb2.GetMetadataRequest, request, context)
        await self._admit(context)
        return sync_pb2.GetMetadataResponse(metadata=Struct())


@contextlib.asynccontextmanager
async def serve(svc: FlagService, *, auth: Authenticator, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve the sync protocol while the context is open; yields the bound port (None: could not bind,
    logged; the HTTP service goes on without it)."""
    hub = SyncHub(svc)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # never share a port with another process
    server.add_generic_rpc_handlers((_handlers(FlagSyncServicer(hub=hub, auth=auth)),))
    try:
        bound: int | None = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        logger.error("flagd sync: cannot listen on %s:%s (%s); in-process flagd providers cannot connect",
                     host, port, exc)
        yield None
        return
    await server.start()
    task = asyncio.create_task(hub.run())
    logger.info("flagd sync (gRPC flagd.sync.v1) on %s:%s", host, bound)
    try:
        yield bound
    finally:
        await server.stop(None)
        await cancel_and_wait([task])
