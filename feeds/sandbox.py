"""Run `feeds/parsing.py` in a child process under wall-clock, CPU and memory limits."""

import asyncio
import json
import signal
import sys
from pathlib import Path

from feeds.fetch import FetchError

PARSE_TIMEOUT = 20.0
PARSE_MEMORY = 1024 * 1024 * 1024
PARSER = Path(__file__).with_name("parsing.py")


async def parse(body, content_type, url, timeout=PARSE_TIMEOUT, memory=PARSE_MEMORY):
    """Parse feed bytes in a child process that is killed after `timeout` seconds.

    The child also caps its own CPU time and address space, so a quadratic parse
    (feedparser #562) or a memory blow-up costs at most `timeout` seconds of one core.
    Return the dict from `feeds.parsing.parse_bytes`; raise FetchError when it fails.
    """
    header = json.dumps({"content_type": content_type, "url": url,
                         "cpu_seconds": int(timeout) + 1, "memory_bytes": memory})
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(PARSER), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise FetchError(f"could not start the feed parser: {exc}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(header.encode() + b"\n" + body),
                                          timeout)
    except TimeoutError:
        raise FetchError(f"parsing the feed took longer than {timeout:g} s; gave up") from None
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise FetchError(f"parsing the feed took longer than {timeout:g} s; gave up")
    if process.returncode != 0:
        last = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"the feed parser failed: {last[:300]}")
    try:
        result = json.loads(out)
    except ValueError:
        raise FetchError("the feed parser returned no result") from None
    if "error" in result:
        raise FetchError(result["error"])
    return result
