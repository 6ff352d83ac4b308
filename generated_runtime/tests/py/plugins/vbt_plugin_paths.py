"""Finds the plugin libraries built by cmake/plugins.cmake: $VBT_PLUGIN_DIR, the installed package's
vibetensor/_plugins (pip/scikit-build builds), or BUILD/vbt_plugins next to tools/dev_build.sh's BUILD/site."""
import os

import vibetensor


def plugin_dir():
    pkg = os.path.dirname(os.path.abspath(vibetensor.__file__))
    candidates = [os.environ.get("VBT_PLUGIN_DIR"), os.path.join(pkg, "_plugins"),
                  os.path.join(os.path.dirname(pkg), os.pardir, "vbt_plugins")]
    for c in candidates:
        if c and os.path.exists(os.path.join(c, "libvbt_example_axpby.so")):
            return os.path.normpath(c)
    raise FileNotFoundError(f"plugin libraries not found in any of {candidates}; build with cmake/plugins.cmake")


def plugin_path(name):
    return os.path.join(plugin_dir(), f"lib{name}.so")
