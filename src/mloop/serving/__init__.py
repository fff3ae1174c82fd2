"""Serving (paper component C8): HTTP apps over the registry and the feature store.

So far: the online feature server (``create_feature_app``), behind ``mloop features serve``.
"""

from __future__ import annotations

from mloop.serving._feature_server import create_feature_app

__all__ = ["create_feature_app"]
