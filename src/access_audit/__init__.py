"""access-audit: find records-system lookups made with no legitimate policing purpose.

The pipeline, in order: ``ingest`` (export drops into Parquet stores), ``explain`` (every path that
makes an access legitimate), ``score`` (risk indicators), ``flag`` (reviewable episodes), then the
analysts' ``review`` and ``report``. :class:`access_audit.workspace.Workspace` is the one object the
CLI, the nightly pipeline, the notebooks and the tests share.
"""

from __future__ import annotations

__version__ = "0.1.0"
