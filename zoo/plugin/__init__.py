"""Plugin machinery: the hooks, component specs, the registry, plugin loading, the
component factories."""
