import kplug

@kplug.hookimpl
def kplug_register_backbones(register):
    register("tiny", 42)
