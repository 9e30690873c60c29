"""Acknowledge links in pages: signed (itsdangerous, HMAC-SHA256), for one incident and one person, expiring.

Single use: a link acknowledges an unacknowledged incident once; afterwards every link of that incident is
spent (the confirm page says who acknowledged it). Opening the link shows a confirm page; only its POST
acknowledges, so a mail scanner that follows links acknowledges nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

__all__ = ["AckLinks", "AckGrant", "AckError"]


class AckError(ValueError):
    """The link is forged, for another incident, or expired."""


@dataclass(frozen=True)
class AckGrant:
    incident_id: str
    person: str
    expires: datetime


class AckLinks:
    def __init__(self, *, key: bytes, base_url: str, valid_for: timedelta) -> None:
        self.serializer = URLSafeSerializer(key, salt="safeguard-incident-ack")
        self.base, self.valid_for = base_url.rstrip("/"), valid_for

    def token(self, *, incident_id: str, person: str, now: datetime) -> str:
        expires = int((now + self.valid_for).timestamp())
        return str(self.serializer.dumps({"i": incident_id, "p": person, "e": expires}))

    def link(self, *, incident_id: str, person: str, now: datetime) -> str:
        token = self.token(incident_id=incident_id, person=person, now=now)
        return f"{self.base}/api/incidents/{quote(incident_id)}/ack?token={quote(token)}"

    def read(self, token: str, *, incident_id: str, now: datetime) -> AckGrant:
        try:
            body = self.serializer.loads(token)
        except BadSignature:
            raise AckError("the acknowledge link is not valid (altered or not ours)") from None
        if not isinstance(body, dict) or body.get("i") != incident_id:
            raise AckError("the acknowledge link is for another incident")
        expires = datetime.fromtimestamp(int(body["e"]), tz=now.tzinfo)
        if now >= expires:
            raise AckError("the acknowledge link has expired; acknowledge in the console or with the API")
        return AckGrant(incident_id=incident_id, person=str(body["p"]), expires=expires)
