"""Plugin machinery: the hooks, component specs, the registry, finding and loading plugins,
running their code safely, the component factories."""
