'use strict';
// Reading numbers from environment variables (no dependencies: the load
// driver uses it without tracing).

function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function envPort(name, fallback) {
  const port = envNumber(name, fallback);
  if (!Number.isInteger(port) || port > 65535) throw new Error(`${name} is not a port: ${port}`);
  return port;
}

module.exports = { envNumber, envPort };
