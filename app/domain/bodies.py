"""What every JSON body a reader sends has in common, for the HTTP layer and the domain alike.

Most bodies are decoded by Litestar from a handler's signature; the import's older wrapper
`{document, password}` is decoded by the domain (which names what is wrong in a file). Both
use the one strict base and the one password type below.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

MAX_PASSWORD = 1024
Password = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """The base of every JSON request body: a field the API does not declare is refused
    (422 `validation_failed`), never silently dropped, so a client's typo cannot pass unseen."""


def ready_for_threads(*types: Any) -> None:
    """Build msgspec's type information for `types` now, in the importing thread.

    msgspec builds a Struct type's decoding information on its first use and caches it on the
    class; two threads using a type for the first time at once can see it half built and crash
    the process (a NULL dereference in msgspec's `convert`). A module whose types are
    converted off the event loop (imports, tool entries) calls this once at import, which
    Python runs in one thread."""
    for kind in types:
        msgspec.json.Decoder(kind)


__all__ = ["MAX_PASSWORD", "Password", "Strict", "ready_for_threads"]
