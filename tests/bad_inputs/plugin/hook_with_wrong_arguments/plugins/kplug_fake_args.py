import kplug

@kplug.hookimpl
def kplug_register_backbones(registry):
    registry("tiny", print)
