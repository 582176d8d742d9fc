"""How the command-line clients print events: JSON lines or text (a board prints its own)."""

import json


def json_emitter(record: dict) -> None:
    """Print one JSON line per record."""
    print(json.dumps(record))


def text_emitter(record: dict) -> None:
    """Print one human-readable line per record."""
    kind = record.get("event")
    at = record.get("at_ms", 0) / 1000
    rest = ", ".join("%s=%s" % (k, v) for k, v in record.items() if k not in ("event", "at_ms"))
    print("[%8.3f s] %-13s %s" % (at, kind, rest))
