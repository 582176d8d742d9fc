"""Board descriptions: boards/<name>/board.json."""

import json
import os

SIM_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SIM_DIR)
BOARDS_DIR = os.path.join(REPO, "boards")


def _read(name: str) -> dict:
    with open(os.path.join(BOARDS_DIR, name, "board.json")) as f:
        return json.load(f)


def _dirs() -> list:
    if not os.path.isdir(BOARDS_DIR):
        return []
    return sorted(n for n in os.listdir(BOARDS_DIR)
                  if os.path.isfile(os.path.join(BOARDS_DIR, n, "board.json")))


def list_boards() -> list:
    """Names of all boards: each boards/<name>/board.json and its "variants"."""
    names = []
    for d in _dirs():
        names.append(d)
        names.extend(sorted(_read(d).get("variants", {})))
    return names


def load_board(name: str) -> dict:
    """The description of board ``name`` (KeyError if there is none).

    A variant (e.g. "rp2040w" in boards/rp2040/board.json) is its base board with
    the variant's keys overriding; "dir" names the folder (noise.py, manifest).
    """
    for d in _dirs():
        board = _read(d)
        variants = board.pop("variants", {})
        if name == d or name in variants:
            board.update(variants.get(name, {}))
            board["name"] = name
            board["dir"] = os.path.join(BOARDS_DIR, d)
            return board
    raise KeyError("no board %r (have: %s)" % (name, ", ".join(list_boards())))


def is_supported(board: dict) -> bool:
    """False for boards whose stock firmware cannot run ovpnkx (no ``tls``)."""
    return board.get("supported", True) is not False


def supported_boards() -> list:
    """Names of the boards ovpnkx runs on (stock firmware with ``tls``)."""
    return [n for n in list_boards() if is_supported(load_board(n))]


def refusal(board: dict) -> "str | None":
    """Why ``board`` cannot run ovpnkx, naming the missing module and the board to
    use instead; None for a supported board."""
    if is_supported(board):
        return None
    u = board.get("unsupported") or {}
    alt = u.get("use_instead")
    alt_text = ""
    if alt:
        try:
            alt_text = "; use %s (%s) instead" % (alt, load_board(alt).get("title", alt))
        except KeyError:
            alt_text = "; use %s instead" % alt
    return ("board %s (%s) cannot run ovpnkx: its stock MicroPython firmware has no `%s` module, "
            "so it cannot do the TLS handshake (%s)%s"
            % (board["name"], board.get("machine", ""), u.get("missing", "tls"), u.get("why", ""), alt_text))
