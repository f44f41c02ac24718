"""The one-connection-one-task stream lifecycle that every source kind shares.

kinds (the registry), consumer (WebSocket side), task (Celery side), flow (credit and
buffers), protocol (every message), options (query parsing), access (who may stream), leases
(slots and leases in Redis), records (the audit trail), control (ops stop), stop (the one
path that ends a running task: revoke, signal, lease check, SIGTERM fallback), workers (who
is online), aio (clean cancellation).
"""
