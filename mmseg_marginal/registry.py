"""Registries of the ``mmseg_marginal`` scope: children of mmseg's, empty.

A config that inherits a shipped config through ``mmseg_marginal::<path>`` has its inherited
dicts marked ``_scope_='mmseg_marginal'`` by mmengine, which then imports this module and looks
for registries of that scope. Each registry here is a child of mmseg's registry of the same
name and holds nothing itself, so every lookup falls through to mmseg's registries (where this
package registers its components) and then to mmengine's: the scope builds exactly what
``mmseg`` builds.
"""

from __future__ import annotations

from typing import Dict

from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

SCOPE = "mmseg_marginal"


def _children() -> Dict[str, Registry]:
    out = {}
    for attr in sorted(dir(mmseg_registry)):
        parent = getattr(mmseg_registry, attr)
        if isinstance(parent, Registry) and parent.scope == "mmseg":
            # ``locations``: what mmengine imports before a lookup in this scope (the package,
            # which registers its components in mmseg's registries)
            out[attr] = parent.children.get(SCOPE) or Registry(
                parent.name, parent=parent, scope=SCOPE, locations=[SCOPE]
            )
    return out


REGISTRIES = _children()
globals().update(REGISTRIES)

__all__ = ["REGISTRIES", "SCOPE"]
