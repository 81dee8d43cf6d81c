import kplug

@kplug.hookimpl
def kplug_configure(config):
    return {"seeed": 3}
