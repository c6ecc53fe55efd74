"""The one text form of a moment in pages, messages, CSV and JSON: ISO-8601 UTC with "Z"."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime | np.datetime64) -> str:
    """Aware datetimes are converted to UTC; numpy datetime64 values are UTC already."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime(ISO_UTC)
    return pd.Timestamp(moment).strftime(ISO_UTC)
