import kplug

@kplug.hookimpl
def kplug_register_backbones(register):
    return ["tiny"]
