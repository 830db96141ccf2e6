"""catalog (Python): product lookups in a local SQLite database.

    GET /product?id=3  ->  {"id": 3, "name": "...", "price_cents": 1299}

The database (CATALOG_DB_PATH) is created and seeded with products at start.
Queries go through the OpenTelemetry sqlite3 instrumentation, so each lookup
has a "SELECT" client span (db.system=sqlite, db.statement) under the request.

Env: CATALOG_PORT (8092), CATALOG_DB_PATH (<temp dir>/waymark-demo-catalog.sqlite),
CATALOG_DELAY_MS / _SLOW_RATE / _SLOW_MS / _ERROR_RATE (0), DEMO_BIND_HOST,
OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

import os
import tempfile

from demo_otel import Behaviour, HttpError, env_port, serve, start_tracing
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

tracer = start_tracing("catalog")
SQLite3Instrumentor().instrument()
import sqlite3  # noqa: E402 - after instrument(): connect() is the traced one

behaviour = Behaviour.from_env("CATALOG")
DB_PATH = os.environ.get("CATALOG_DB_PATH") or os.path.join(
    tempfile.gettempdir(), "waymark-demo-catalog.sqlite")

PRODUCTS = [
    (1, "Trail running shoes", 8999),
    (2, "Merino wool socks", 1499),
    (3, "Headlamp", 3499),
    (4, "Water bottle", 1299),
    (5, "Rain jacket", 12999),
    (6, "Trekking poles", 6999),
    (7, "First-aid kit", 2499),
    (8, "Energy bars (12)", 1899),
]


def seed_database() -> None:
    """Creates the products table and (re)writes the seed rows, on an
    uninstrumented connection: set-up is not part of any request's trace."""
    conn = SQLite3Instrumentor.uninstrument_connection(sqlite3.connect(DB_PATH))
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS products ("
                     " id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL)")
        conn.executemany("INSERT OR REPLACE INTO products (id, name, price_cents) VALUES (?, ?, ?)",
                         PRODUCTS)
    conn.close()


def product(request):
    raw = (request.query.get("id") or [""])[0]
    if not raw.isdigit():
        raise HttpError(400, "id must be a product id")
    behaviour.wait()
    if behaviour.should_fail():
        raise RuntimeError("catalog database is locked (simulated)")
    conn = sqlite3.connect(DB_PATH)
    try:
        # A cursor: the instrumentation traces cursor.execute (not the
        # sqlite3-only connection.execute shortcut).
        cursor = conn.cursor()
        cursor.execute("SELECT id, name, price_cents FROM products WHERE id = ?", (int(raw),))
        row = cursor.fetchone()
    finally:
        conn.close()
    if row is None:
        raise HttpError(404, f"no product {raw}")
    return {"id": row[0], "name": row[1], "price_cents": row[2]}


if __name__ == "__main__":
    seed_database()
    serve("catalog", env_port("CATALOG_PORT", 8092), {"GET /product": product})
