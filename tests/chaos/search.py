"""Card data searched for where it must never be: a pg_dump of the database, every Redis key and value, and
every line every process logged.

The search rule (written into the report):
- a card number, in any spacing: its digits in order, each pair separated by nothing or by one space, `-`,
  `.`, `+` (a form-encoded space) or `%20`, and not inside a longer run of digits. So
  `4242424242424242`, `4242 4242 4242 4242`, `4242-4242-…` and `card_number=4242+4242+…` all match;
- a CVC: a 3-digit CVC like "123" is in ordinary data everywhere (amounts, ids, timestamps), so a bare value
  proves nothing. Each run types CVCs drawn at random for that run (load.run_cvcs) and searches for them
  the way a leak would hold one: next to a card-field name (`cvc`, `cvv`, `security_code`), in JSON
  (`"cvc": "482"`), a form body (`cvc=482`), a Python repr (`'cvc': '482'`) or prose (`cvc 482`):
  the name, up to 6 characters of quotes, spaces, `:`, `=` or `%22`/`%3A`/`%3D`, then the value, not followed by
  another digit. Case-insensitive.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

SEPARATOR = r"(?:[ .+\-]|%20)?"
CVC_NAMES = r"(?:cvc|cvv|cvc2|security[_ ]code)"
CVC_GLUE = r"(?:[\"' :=]|%22|%3a|%3d){0,6}"


def number_pattern(number: str) -> str:
    return r"(?<!\d)" + SEPARATOR.join(number) + r"(?!\d)"


def cvc_pattern(cvc: str) -> str:
    return CVC_NAMES + CVC_GLUE + re.escape(cvc) + r"(?!\d)"


@dataclass
class CardSearch:
    numbers: dict[str, str]  # label → number
    cvcs: list[str]
    hits: dict = field(default_factory=dict)  # where → [what matched, e.g. "card visa", "cvc"]
    searched: dict = field(default_factory=dict)  # where → bytes searched

    def __post_init__(self):
        alternatives = [(f"card {label}", number_pattern(number)) for label, number in self.numbers.items()]
        alternatives += [(f"cvc {index}", cvc_pattern(cvc)) for index, cvc in enumerate(self.cvcs)]
        self._text = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in alternatives]
        self._bytes = [(name, re.compile(pattern.encode(), re.IGNORECASE)) for name, pattern in alternatives]

    def search(self, where: str, data: str | bytes) -> int:
        """Count every match in `data`; returns how many were found (and remembers them under `where`)."""
        patterns = self._bytes if isinstance(data, bytes) else self._text
        found = []
        for name, pattern in patterns:
            found += [name] * len(pattern.findall(data))
        self.searched[where] = self.searched.get(where, 0) + len(data)
        if found:
            self.hits.setdefault(where, []).extend(found)
        return len(found)

    @property
    def total(self) -> int:
        return sum(len(found) for found in self.hits.values())


def pg_dump(database: dict, path: Path) -> str:
    """The whole database as SQL text (schema and every row), kept at `path`."""
    argv = ["pg_dump", "--no-owner", "-h", database["host"], "-p", str(database["port"]), "-U", database["user"]]
    env = {"PGPASSWORD": database["password"]} if database.get("password") else {}
    with open(path, "wb") as out:
        subprocess.run(  # noqa: S603 - our own argv
            [*argv, database["dbname"]], stdout=out, check=True, env={**os.environ, **env}, timeout=300
        )
    return path.read_text(errors="replace")


def redis_dump(url: str) -> bytes:
    """Every key and every value (hash fields, list items, set and sorted-set members, strings, streams), RQ's
    compressed job payloads unpacked."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    chunks: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            chunks.append(key)
            kind = client.type(key)
            if kind == b"hash":
                for name, value in client.hgetall(key).items():
                    chunks += [name, value]
                    if name == b"data":  # RQ keeps the job's function and arguments zlib-compressed
                        with contextlib.suppress(zlib.error):
                            chunks.append(zlib.decompress(value))
            elif kind == b"list":
                chunks += client.lrange(key, 0, -1)
            elif kind == b"set":
                chunks += list(client.smembers(key))
            elif kind == b"zset":
                chunks += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == b"string":
                chunks.append(client.get(key) or b"")
            elif kind == b"stream":
                for _, fields in client.xrange(key):
                    for name, value in fields.items():
                        chunks += [name, value]
    finally:
        client.close()
    return b"\n".join(chunks)
