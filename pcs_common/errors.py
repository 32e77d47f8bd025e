"""Readable request-validation errors shared by the edge service and the central server."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from pcs_common.limits import excerpt


def validation_message(exc: RequestValidationError) -> str:
    """One readable line per invalid field: ``query.width: Input should be ... (got '99999')``.

    The value sent is repeated as a short excerpt only (:func:`~pcs_common.limits.excerpt`), so a
    large input does not come back whole; at most 20 errors are listed."""
    parts = []
    errors = exc.errors()
    for err in errors[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        got = f" (got {excerpt(err['input'])})" if "input" in err and err["input"] is not None else ""
        parts.append(f"{loc}: {err.get('msg', 'invalid')}{got}")
    if len(errors) > 20:
        parts.append(f"... and {len(errors) - 20} more errors")
    return "; ".join(parts)


#: error answers any operation may give, with :data:`PROBLEM_SCHEMA` bodies (documented by :func:`document_errors`)
ERROR_ANSWERS = {
    "400": "Malformed request (the detail says what is allowed)",
    "401": "Credentials missing or wrong",
    "403": "Authenticated, but not allowed (scope, CSRF token, disabled account)",
    "404": "No such resource",
    "409": "Conflicts with the current state (feature disabled, already done, taken)",
    "413": "Request body over the route's limit (the detail states it)",
    "422": "Invalid parameters or body (the detail names each field, what was sent, what is allowed)",
    "429": "Too many attempts (Retry-After, s)",
    "503": "Busy or not ready: camera without a frame, password checks or viewers at their limit (Retry-After, s)",
}

PROBLEM_SCHEMA = {
    "type": "object",
    "title": "Problem",
    "description": "Error body: detail says what is wrong and what is allowed; error is a machine-readable code "
                   "where the protocol has one (OAuth 2.0, device authentication).",
    "properties": {"detail": {"type": "string"}, "error": {"type": "string"}},
    "required": ["detail"],
}


def document_errors(app) -> None:  # noqa: ANN001 - a FastAPI app
    """Make ``app``'s OpenAPI document say how errors really look.

    Both services answer every error with ``{"detail": "<text>"}`` (see :func:`validation_message`),
    not FastAPI's default list of validation errors, and any operation can answer the codes of
    :data:`ERROR_ANSWERS` (authentication, limits, missing resources). The generated document is
    post-processed once: the 422 schema is replaced and the other codes are added where an operation
    does not document them itself. Also installs :class:`AllowHeaderMiddleware`, so that a 405 lists
    every method the document gives the path.
    """
    from starlette.routing import compile_path

    table: list = []

    def routes() -> list:
        if not table:
            for path, item in app.openapi().get("paths", {}).items():
                allowed = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch", "options", "head")}
                if "GET" in allowed:
                    allowed.add("HEAD")
                table.append((compile_path(path)[0], allowed))
        return table

    app.add_middleware(AllowHeaderMiddleware, routes=routes)
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["HTTPValidationError"] = PROBLEM_SCHEMA
        schemas.pop("ValidationError", None)
        schemas["Problem"] = PROBLEM_SCHEMA
        ref = {"$ref": "#/components/schemas/Problem"}
        for item in doc.get("paths", {}).values():
            for op in item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                for code, description in ERROR_ANSWERS.items():
                    answer = op["responses"].setdefault(code, {"description": description})
                    answer.setdefault("content", {"application/json": {"schema": ref}})
        app.openapi_schema = doc
        return doc

    app.openapi = openapi


class AllowHeaderMiddleware:
    """Give a 405 the ``Allow`` header of every route on its path (RFC 9110 §15.5.6).

    Starlette answers 405 with the methods of the first route whose path matched, so ``PUT`` on a
    path served by separate GET, PATCH and DELETE routes said ``Allow: GET``. This collects the
    methods of every OpenAPI path template that matches.
    """

    def __init__(self, app, routes) -> None:  # noqa: ANN001 - ASGI app, () -> [(compiled path regex, methods)]
        self.app = app
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def fixed(event) -> None:  # noqa: ANN001
            if event["type"] == "http.response.start" and event.get("status") == 405:
                methods = set()
                for regex, allowed in self.routes():
                    if regex.match(scope.get("path", "")):
                        methods |= allowed
                if methods:
                    headers = [(k, v) for k, v in event.get("headers", []) if k.lower() != b"allow"]
                    headers.append((b"allow", ", ".join(sorted(methods)).encode()))
                    event = {**event, "headers": headers}
            await send(event)

        await self.app(scope, receive, fixed)
