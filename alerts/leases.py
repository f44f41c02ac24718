"""One task per rule across all workers: a lease in Redis holding the running task's id.

The supervisor claims a rule's lease (SET NX PX) with the id of the task it then starts;
the task renews it while it runs and fires only while it holds it. A task whose lease is
gone or names another task stops: two workers racing for one rule never both fire. A
lease left by a dead worker lapses after ALERT_LEASE_SECONDS and the next supervisor round
starts the rule again.
"""

from django.conf import settings

PREFIX = "tailboard:alert:lease:"

# Renew only our own lease: compare and extend in one step.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def key(rule_id):
    """Return the Redis key of a rule's lease."""
    return f"{PREFIX}{rule_id}"


def ttl_ms():
    """Return the lease lifetime in milliseconds."""
    return int(settings.ALERT_LEASE_SECONDS * 1000)


def renew_interval():
    """How often a running rule renews its lease (a third of its lifetime)."""
    return max(0.5, settings.ALERT_LEASE_SECONDS / 3)


def claim(client, rule_id, task_id):
    """Claim a rule's lease for `task_id`; True when no task held it."""
    return bool(client.set(key(rule_id), task_id, nx=True, px=ttl_ms()))


def holder(client, rule_id):
    """Return the task id holding the rule's lease, or None."""
    value = client.get(key(rule_id))
    return value.decode() if isinstance(value, bytes) else value


def holders(client, rule_ids):
    """Return {rule id: task id or None} in one round trip."""
    rule_ids = list(rule_ids)
    if not rule_ids:
        return {}
    values = client.mget([key(rule_id) for rule_id in rule_ids])
    return {rule_id: (value.decode() if isinstance(value, bytes) else value)
            for rule_id, value in zip(rule_ids, values, strict=False)}


def release(client, rule_id, task_id):
    """Drop the lease if `task_id` holds it; True when it did."""
    return bool(client.eval(RELEASE_SCRIPT, 1, key(rule_id), task_id))


def drop(client, rule_id):
    """Drop the lease whoever holds it (a rule disabled or deleted); return the old holder."""
    with client.pipeline(transaction=True) as pipe:
        pipe.get(key(rule_id))
        pipe.delete(key(rule_id))
        old, _ = pipe.execute()
    return old.decode() if isinstance(old, bytes) else old


async def arenew(client, rule_id, task_id):
    """Extend the lease if `task_id` still holds it; True when it does."""
    return bool(await client.eval(RENEW_SCRIPT, 1, key(rule_id), task_id, ttl_ms()))


async def arelease(client, rule_id, task_id):
    """Async twin of `release`."""
    return bool(await client.eval(RELEASE_SCRIPT, 1, key(rule_id), task_id))


def scan_rule_ids(client):
    """Return the ids of rules with a lease (for finding tasks of rules that are gone)."""
    found = []
    for name in client.scan_iter(match=PREFIX + "*", count=500):
        name = name.decode() if isinstance(name, bytes) else name
        tail = name[len(PREFIX):]
        if tail.isdigit():
            found.append(int(tail))
    return found
