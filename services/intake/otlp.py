"""OTLP/HTTP wire: request bodies (protobuf or JSON, gzip or not) in, responses and errors out."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

# protobuf and googleapis-common-protos ship no type hints (their stubs are not installed here): narrow ignores
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (ExportMetricsServiceRequest,
                                                                           ExportMetricsServiceResponse)

__all__ = ["PROTOBUF", "JSON", "WireError", "Wire", "wire_of", "inflate", "parse_into", "decode", "success", "failure"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class WireError(Exception):
    """A body that cannot be read: `status` is the HTTP answer (400, 413, 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Wire:
    json: bool

    @property
    def content_type(self) -> str:
        return JSON if self.json else PROTOBUF

    def encode(self, message: Message) -> bytes:
        text: str = json_format.MessageToJson(message, indent=None) if self.json else ""
        raw: bytes = text.encode() if self.json else message.SerializeToString()
        return raw


def wire_of(content_type: str) -> Wire:
    """The encoding a Content-Type names; WireError 415 for any other."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return Wire(json=False)
    if media == JSON:
        return Wire(json=True)
    raise WireError(415, f"content type {media or '(none)'!r} is not OTLP/HTTP: send {PROTOBUF} or {JSON}")


def _gunzip(body: bytes, *, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise WireError(400, f"the gzip body is corrupt: {exc}") from None
    if len(out) > max_bytes:
        raise WireError(413, f"the body inflates to more than {max_bytes} bytes")
    if not inflater.eof:
        raise WireError(400, "the gzip body is truncated")
    return out


def inflate(body: bytes, *, content_encoding: str, max_bytes: int) -> bytes:
    """The body as sent before its Content-Encoding (gzip or none); WireError 400, 413 or 415."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        return _gunzip(body, max_bytes=max_bytes)
    if encoding not in ("", "identity"):
        raise WireError(415, f"content encoding {encoding!r} is not supported: send gzip or none")
    return body


def parse_into(message: Message, raw: bytes, *, wire: Wire, json_body: object = None) -> None:
    """Fill `message` from `raw` (protobuf) or JSON (`json_body` when already loaded); WireError 400 when it does not parse."""
    try:
        if not wire.json:
            message.ParseFromString(raw)
        elif json_body is not None:
            json_format.ParseDict(json_body, message, ignore_unknown_fields=True)
        else:
            json_format.Parse(raw, message, ignore_unknown_fields=True)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError, RecursionError) as exc:
        kind = "OTLP/JSON" if wire.json else "protobuf"
        raise WireError(400, f"the body is not a {kind} {type(message).__name__}: {exc}") from None


def decode(*, body: bytes, wire: Wire, content_encoding: str, max_bytes: int) -> ExportMetricsServiceRequest:
    """The export request; WireError 400 (undecodable), 413 (inflates too large) or 415 (unknown encoding)."""
    request = ExportMetricsServiceRequest()
    parse_into(request, inflate(body, content_encoding=content_encoding, max_bytes=max_bytes), wire=wire)
    return request


def success(*, rejected: int, message: str) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    return response


def failure(*, status: int, message: str) -> Status:
    """The body of a 4xx/5xx answer: a google.rpc.Status (the code is gRPC's for the HTTP status)."""
    codes = {400: 3, 404: 12, 413: 8, 415: 3, 429: 8, 503: 14}  # INVALID_ARGUMENT, UNIMPLEMENTED, ...
    return Status(code=codes.get(status, 2), message=message)
