"""Where a rule's reading got to, kept in Redis so that a restarted rule goes on from there.

A rule's task keeps the position its kind's body reports (`RuleOutput.note_position`: offsets
in the files followed, a journal cursor) and saves it every SAVE_SECONDS, only while it holds
the rule's lease (checked in the same Redis step) and only when every firing of the lines
before it has been recorded (nothing queued or being sent): a task that dies loses no firing,
and its successor reads again at most the last few seconds' lines (a firing among them may be
sent twice). The next task of the rule resumes there (the kind's `resume` option) when the
rule still reads the same source; a saved position expires after TTL_SECONDS. A rule stopped on
purpose (disabled, deleted, its source disabled) forgets it: enabled again, it starts at the
source's end, as new, instead of alerting on what was written while it was off.
"""

import json

from alerts import leases

PREFIX = "tailboard:alert:position:"
SAVE_SECONDS = 1.0
TTL_SECONDS = 24 * 3600
MAX_BYTES = 64 * 1024

# Save only for the lease holder: compare the lease and write in one step.
SAVE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def key(rule_id):
    """The Redis key of a rule's saved position."""
    return f"{PREFIX}{rule_id}"


async def save(redis, rule_id, task_id, kind, source_id, position):
    """Save where the rule's reading got to; False when this task no longer holds the lease
    (or the position is too large to keep)."""
    value = json.dumps({"kind": kind, "source": source_id, "position": position})
    if len(value) > MAX_BYTES:
        return False
    return bool(await redis.eval(SAVE_SCRIPT, 2, leases.key(rule_id), key(rule_id), task_id,
                                 value, TTL_SECONDS))


async def load(redis, rule_id, kind, source_id):
    """The saved position of a rule reading this source, or None."""
    raw = await redis.get(key(rule_id))
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("kind") != kind \
            or value.get("source") != source_id:
        return None
    return value.get("position") or None


def forget(client, rule_id):
    """Drop a rule's saved position (a blocking client)."""
    client.delete(key(rule_id))


async def aforget(redis, rule_id):
    """`forget` for an asyncio client."""
    await redis.delete(key(rule_id))
