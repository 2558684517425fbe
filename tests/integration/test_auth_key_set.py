"""People's tokens checked by the identity provider's key set, fetched over real HTTP.

A local HTTP server plays the provider's JWKS endpoint; the ticket and routing
services run with ``AUTH_JWKS_URL`` pointing at it and hold no secret at all.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from runtime.auth import AuthSettings
from runtime.service import Service
from runtime.settings import CommonSettings
from services.routing import bootstrap as routing
from services.routing.config import Settings as RoutingSettings
from services.tickets import bootstrap as tickets
from services.tickets.config import Settings as TicketSettings

ISSUER, AUDIENCE = "https://login.example.test/", "helpdesk-api"


class Provider:
    """The identity provider's signing keys, and its published key set."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.fetches = 0

    def rotate(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def key_set(self) -> bytes:
        self.fetches += 1
        keys = [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid, "use": "sig", "alg": "RS256"}
            for kid, k in self.keys.items()
        ]
        return json.dumps({"keys": keys}).encode()

    def token(self, subject: str, roles: tuple[str, ...] = ("agent",), kid: str = "k1") -> dict[str, str]:
        now = int(time.time())
        claims = {"sub": subject, "roles": list(roles), "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        token = jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})
        return {"Authorization": f"Bearer {token}"}


@contextmanager
def serving_key_set(provider: Provider) -> Iterator[str]:
    class KeySetHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = provider.key_set()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeySetHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def provider() -> Iterator[tuple[Provider, str]]:
    provider = Provider()
    with serving_key_set(provider) as url:
        yield provider, url


async def _client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with service._lifespan(service.app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t") as http:
            yield http


async def test_the_ticket_service_takes_the_providers_tokens_and_holds_no_secret(
    provider: tuple[Provider, str], sqlite_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    idp, url = provider
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix)
    auth = AuthSettings(jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    service = tickets.build(common, TicketSettings(database_url=sqlite_database), auth)
    async for http in _client(service):
        assert (await http.get("/v1/tickets", headers=idp.token("alice"))).status_code == 200
        assert (await http.get("/readyz")).json()["checks"]["identity-keys"] is True
        # The provider rotates in a new key: the first token naming it makes the service look again.
        idp.rotate("k2")
        service.guard.authenticate.verifier.keys._fetched_at -= 60  # type: ignore[union-attr]  # a while ago
        assert (await http.get("/v1/tickets", headers=idp.token("bob", kid="k2"))).status_code == 200
        # A token signed by anyone else, even naming a known key, is refused.
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = int(time.time())
        claims = {"sub": "mallory", "roles": ["lead"], "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
        forged = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": "k1"})
        refused = await http.get("/v1/tickets", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401 and refused.json()["type"] == "urn:helpdesk:problem:invalid-token"
        # A flood of tokens naming unknown keys does not become a flood of fetches.
        fetched = idp.fetches
        for n in range(20):
            unknown = jwt.encode(claims, forger, algorithm="RS256", headers={"kid": f"nope-{n}"})
            assert (await http.get("/v1/tickets", headers={"Authorization": f"Bearer {unknown}"})).status_code == 401
        assert idp.fetches <= fetched + 1


async def test_routing_takes_the_same_tokens_and_only_leads_change_agents(
    provider: tuple[Provider, str], sqlite_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    idp, url = provider
    common = CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix)
    auth = AuthSettings(jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    service = routing.build(common, RoutingSettings(database_url=sqlite_database), auth=auth)
    async for http in _client(service):
        profile = {"skills": ["vpn"], "queues": ["L2-network"]}
        assert (await http.get("/v1/agents", headers=idp.token("alice"))).status_code == 200
        assert (await http.put("/v1/agents/net-9", json=profile, headers=idp.token("alice"))).status_code == 403
        lead = idp.token("lena", ("agent", "lead"))
        assert (await http.put("/v1/agents/net-9", json=profile, headers=lead)).status_code == 200
        assert (await http.get("/v1/agents", headers=idp.token("c-42", ("customer",)))).status_code == 403
