"""kplug's built-in components, each module a plugin registered like any other."""
