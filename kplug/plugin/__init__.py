"""The public plugin API (``kplug.plugin``) and the machinery behind it: hook specs, the plugin
manager, the component registry and name -> component resolution."""
