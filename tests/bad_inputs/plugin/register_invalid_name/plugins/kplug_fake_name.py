import keras
import kplug

@kplug.hookimpl
def kplug_register_backbones(register):
    register("Tiny Net", lambda input_shape: keras.Sequential([keras.layers.Flatten()]))
