import kplug

@kplug.hookimpl
def kplug_configure(config):
    raise AttributeError("config has no attribute 'lr'")
