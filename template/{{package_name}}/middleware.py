"""ASGI middleware that turns requests away before any endpoint sees them."""

import logging
from collections.abc import Collection, Sequence

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def header(scope: Scope, name: bytes) -> str:
    """One request header's value ("" when absent), without building a Headers object
    on every request: these checks run before each endpoint."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` gives `::1`."""
    if host_header.startswith("["):
        name = host_header[1:].partition("]")[0]
    else:
        name = host_header.partition(":")[0]
    return name.rstrip(".").lower()


class AllowedHostsMiddleware:
    """Answer 400 to a Host header that is not one of the service's names, so that a
    made-up host never ends up in the URLs the app builds (Location, redirects).

    `*` admits any host, `*.example.com` the subdomains of example.com. Paths in
    `any_host_paths` answer whatever the host: they build no URL, and their callers
    (Prometheus, which scrapes each replica by its address) cannot choose the header.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str],
        any_host_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.any_host_paths = frozenset(any_host_paths)
        patterns = [host.lower() for host in allowed_hosts]
        self.allow_any = "*" in patterns
        self.names = {host for host in patterns if not host.startswith("*.")}
        self.suffixes = tuple(host[1:] for host in patterns if host.startswith("*."))

    def allows(self, name: str) -> bool:
        return self.allow_any or name in self.names or name.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or scope["path"] in self.any_host_paths
        ):
            await self.app(scope, receive, send)
            return
        host = header(scope, b"host")
        if self.allows(host_name(host)):
            await self.app(scope, receive, send)
            return
        logger.info("Refused a request for host %.100r: not in ALLOWED_HOSTS", host)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = JSONResponse(
            {"detail": "Unknown host: this service does not answer to that name"},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
        await response(scope, receive, send)


class RequestBodyTooLarge(HTTPException):
    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"Request body too large: at most {max_body_bytes} bytes (MAX_BODY_BYTES)",
            # The client may still be sending: close rather than read the rest.
            headers={"Connection": "close"},
        )


class BodySizeLimitMiddleware:
    """Answer 413 to a request body over `max_body_bytes`: at once when its
    Content-Length says so, else as soon as the bytes received pass the limit, so that
    a large body is never buffered or parsed."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if (
            not declared
            and not header(scope, b"transfer-encoding")
            and scope.get("http_version") in ("1.0", "1.1")
        ):
            # HTTP/1 sends no body without either header (a GET, most often): nothing
            # to count. HTTP/2 may, so it is counted there.
            await self.app(scope, receive, send)
            return
        too_large = RequestBodyTooLarge(self.max_body_bytes)
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self.respond(too_large, scope, receive, send)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI passes an HTTPException from reading the body on to
                    # its exception handlers, which answer with the usual JSON.
                    raise too_large
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestBodyTooLarge:
            if response_started:
                raise
            await self.respond(too_large, scope, receive, send)

    @staticmethod
    async def respond(
        error: RequestBodyTooLarge, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = JSONResponse(
            {"detail": error.detail}, error.status_code, headers=error.headers
        )
        await response(scope, receive, send)
