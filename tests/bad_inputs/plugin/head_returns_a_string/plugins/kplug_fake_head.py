import kplug

@kplug.hookimpl
def kplug_register_heads(register):
    def words(num_classes: int | None = None):
        return "not a head"

    register("words", words)
