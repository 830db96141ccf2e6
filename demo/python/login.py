"""login (Python): checks a user and hands out a session token.

    POST /login  {"user": "alice"}  ->  {"user": "alice", "token": "..."}

Env: LOGIN_PORT (8091), LOGIN_DELAY_MS / _SLOW_RATE / _SLOW_MS / _ERROR_RATE (5 / 0 / 0 / 0),
DEMO_BIND_HOST (127.0.0.1), OTEL_EXPORTER_OTLP_ENDPOINT (http://localhost:4318).
"""

from __future__ import annotations

import hashlib
import secrets

from demo_otel import Behaviour, HttpError, env_port, serve, start_tracing

tracer = start_tracing("login")
behaviour = Behaviour.from_env("LOGIN", delay_ms=5)

# Demo accounts; every password is the user name reversed.
_SALT = b"waymark-demo"
USERS = {name: hashlib.pbkdf2_hmac("sha256", name[::-1].encode(), _SALT, 2000)
         for name in ("alice", "bob", "carol", "dave")}


def login(request):
    body = request.body if isinstance(request.body, dict) else {}
    user = body.get("user")
    if not isinstance(user, str) or not user:
        raise HttpError(400, "user is required")
    behaviour.wait()
    with tracer.start_as_current_span("verify password") as span:
        span.set_attribute("app.user", user)
        digest = hashlib.pbkdf2_hmac("sha256", user[::-1].encode(), _SALT, 2000)
        if behaviour.should_fail():
            raise RuntimeError("session store unavailable (simulated)")
        if USERS.get(user) != digest:
            raise HttpError(403, f"unknown user {user}")
    return {"user": user, "token": secrets.token_hex(16)}


if __name__ == "__main__":
    serve("login", env_port("LOGIN_PORT", 8091), {"POST /login": login})
