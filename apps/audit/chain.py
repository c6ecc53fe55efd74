"""The hash of one audit row, from its canonical JSON and the previous row's hash."""

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_payload(
    *,
    seq: int,
    occurred_at: datetime,
    actor_id: int | None,
    actor_label: str,
    owner_id: int | None,
    event_type: str,
    target_type: str,
    target_id: str,
    data: dict[str, Any],
) -> str:
    return json.dumps(
        {
            "seq": seq,
            "ts": occurred_at.isoformat(timespec="microseconds"),
            "actor": actor_id,
            "actor_label": actor_label,
            "owner": owner_id,
            "type": event_type,
            "target": [target_type, target_id],
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )


def chain_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()
