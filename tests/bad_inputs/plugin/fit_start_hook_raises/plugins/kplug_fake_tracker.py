import kplug

@kplug.hookimpl
def kplug_on_fit_start(trainer, model):
    raise ConnectionError("tracking server is down")
