"""Request parameters as PTB encodes them: a urlencoded form, or multipart/form-data when it uploads files."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.parse

from testkit.fake_bot_api.model import JSON, Files, UploadedFile

# PTB sends strings raw and JSON-encodes all other values, so only these stay strings ("123" may be a text).
_STRING_FIELDS = frozenset(
    "text caption parse_mode callback_query_id url secret_token language_code action file_id photo animation video "
    "document".split()
)


def _parse_multipart(body: bytes, boundary: bytes) -> tuple[list[tuple[str, str]], Files]:
    """httpx's multipart/form-data, as PTB uploads files: (form fields, file parts)."""
    fields: list[tuple[str, str]] = []
    files: Files = {}
    for part in body.split(b"--" + boundary)[1:-1]:
        raw_head, _, content = part.partition(b"\r\n\r\n")
        head, content = raw_head.decode("utf-8", "replace"), content.removesuffix(b"\r\n")
        name = re.search(r'\bname="([^"]*)"', head)
        filename = re.search(r'\bfilename="([^"]*)"', head)
        content_type = re.search(r"(?im)^content-type:\s*(\S+)", head)
        if name and filename:
            mime = content_type[1] if content_type else "application/octet-stream"
            files[name[1]] = UploadedFile(name[1], filename[1], mime, content)
        elif name:
            fields.append((name[1], content.decode("utf-8", "replace")))
    return fields, files


def decode(content_type: str, body: bytes) -> tuple[JSON, Files]:
    """Parameters from a form or multipart body (PTB's encodings), JSON values decoded."""
    files: Files = {}
    if boundary := re.search(r'multipart/form-data;.*boundary="?([^";]+)', content_type, re.I):
        fields, files = _parse_multipart(body, boundary[1].encode("latin-1"))
    else:
        fields = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    params: JSON = {}
    for key, raw in fields:
        params[key] = raw
        if key not in _STRING_FIELDS:
            with contextlib.suppress(ValueError):
                params[key] = json.loads(raw)
    return params, files
