import kplug

@kplug.hookimpl
def kplug_register_backbone(register):
    register("tiny", print)
