"""Running the review page: a socket on 127.0.0.1 only, uvicorn without an access log (its lines
would hold flag ids and, on the first request, the start token)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from access_audit.errors import AccessAuditError

if TYPE_CHECKING:
    from access_audit.workspace import Workspace

HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port); a clear error if taken."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(64)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise AccessAuditError(
                f"port {port} on {HOST} is in use: choose another with --port (0: any free port)"
            ) from None
        raise AccessAuditError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    return listener


def serve(
    workspace: Workspace,
    *,
    port: int = DEFAULT_PORT,
    reviewer: str | None = None,
    announce: Callable[[str], None],
) -> None:
    """Serve the review page until interrupted; ``announce`` is given the address to open,
    start token included, once the socket listens."""
    import uvicorn

    from access_audit.serve.app import create_app

    app, token = create_app(workspace, reviewer=reviewer)
    listener = bind(port)
    with listener:
        bound = listener.getsockname()[1]
        announce(f"http://{HOST}:{bound}/?token={token}")
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            lifespan="off",
        )
        uvicorn.Server(config).run(sockets=[listener])
