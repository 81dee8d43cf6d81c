import kplug

@kplug.hookimpl
def kplug_register_datasets(register):
    def crashing(path: str):
        raise RuntimeError("parser crashed on " + path)

    def dict_source(path: str):
        return {"x": [1, 2]}

    register("crashing", crashing)
    register("dict-source", dict_source)
