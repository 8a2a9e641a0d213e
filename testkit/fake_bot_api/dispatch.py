"""HTTP dispatch: the loopback server, routing each request to a Bot API method or a download, and recording it."""

from __future__ import annotations

import json
import mimetypes
import re
import sys
import time
import traceback
import urllib.parse
from collections.abc import Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testkit.fake_bot_api.decoding import decode
from testkit.fake_bot_api.methods import BotMethods
from testkit.fake_bot_api.model import DROPPED, JSON, Answer, ApiError, Files, Request


class Dispatch(BotMethods):
    """Token check, fault injection and the rate limit in front of the methods; every request is recorded."""

    def _internal_error(self, text: str) -> None:
        with self._cond:
            self.internal_errors.append(text)

    def _handle(self, raw_path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer and record one HTTP request (before the client can see the answer); ``DROPPED``: hang up."""
        at, split = time.monotonic(), urllib.parse.urlsplit(raw_path)
        route = re.fullmatch(r"/(file/)?bot([^/]*)/(.*)", urllib.parse.unquote(split.path), re.S)
        method = ("download" if route[1] else route[3]) if route else split.path
        params: JSON = {"file_path": route[3]} if route and route[1] else {}
        files: Files = {}
        try:
            if route is None:
                raise ApiError(404, "Not Found")
            if not route[1]:
                params, files = decode(headers.get("Content-Type", ""), body)
            answer = DROPPED if self.outage_active else self._answer(route[2], method, params, files)
        except ApiError as exc:
            answer = Answer(exc.status, exc.payload)
        except Exception:
            self._internal_error(traceback.format_exc())
            answer = Answer(500, ApiError(500, "Internal Server Error: a bug in the fake Bot API").payload)
        answer = DROPPED if self.outage_active else answer  # went down meanwhile: the answer is lost on the way
        record = Request(method, params, files, at, params.get("chat_id"), answer.status, answer.response)
        with self._cond:
            self._records.append(replace(record, injected=answer.injected))
            self._notify()
        return answer

    def _answer(self, token: str, method: str, params: JSON, files: Files) -> Answer:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = self._download if method == "download" else self._methods.get(method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        chat_id = params.get("chat_id")
        if fault := self._take_fault(method, chat_id):
            self._closing.wait(fault.delay)
            if fault.answer is not None:
                return fault.answer
        if (retry_after := self._rate_limited(method, chat_id)) is not None:
            error = ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after).payload
            return Answer(429, error, injected=True)
        result = handler(params, files)
        return result if isinstance(result, Answer) else Answer(200, {"ok": True, "result": result})

    def _download(self, params: JSON, files: Files) -> Answer:
        with self._cond:
            stored = self._files_by_path.get(params["file_path"])
        if stored is None:
            raise ApiError(404, "Not Found")
        content_type = mimetypes.guess_type(stored.path)[0] or "application/octet-stream"
        return Answer(200, {"ok": True, "result": {"file_size": len(stored.data)}}, stored.data, content_type)


class Server(ThreadingHTTPServer):
    """Serves a ``Dispatch`` on a free port of 127.0.0.1, a thread per connection."""

    daemon_threads = True

    def __init__(self, api: Dispatch) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (cancelled long-polls, timeouts) are normal; anything else is a bug of the fake."""
        if not isinstance(sys.exc_info()[1], OSError):
            self.api._internal_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's connection pool expects
    disable_nagle_algorithm = True  # and one buffered write per response: no delayed-ACK stalls
    wbufsize = 64 * 1024
    server: Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.api._handle(self.path, self.headers, body)
        if answer is DROPPED:  # an outage: hang up without a response
            self.close_connection = True
            return
        payload = json.dumps(answer.response).encode() if answer.body is None else answer.body
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines contain the token."""
