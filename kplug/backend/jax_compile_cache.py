"""XLA programs compiled on the jax backend, kept on disk for the next run.

On jax, XLA compiles the train, test and predict steps of every model again in every process: on
2 CPU cores that is about 5 s of the digits CNN's 19.6 s ``kplug train`` command. JAX can keep
the compiled programs in a persistent cache, keyed by the program, the compile options and the
jax version (a hit is the executable XLA would have built), but leaves it off. kplug turns it on
when it trains, evaluates or predicts on jax, in ``$KPLUG_CACHE_DIR/jax-compilation`` (default
``~/.cache/kplug/jax-compilation``, a directory of the user's own): a second run of the same
model, a resumed run, another tuning trial or a ``kplug bench`` probe reuses the programs, and
the digits command takes 14.4 s. The cache keeps at most ``MAX_BYTES``, dropping the least
recently used programs, under a file lock that processes training at once share.

kplug leaves JAX's setting alone when the user chose a directory (``JAX_COMPILATION_CACHE_DIR``
or ``jax.config``); ``KPLUG_JAX_COMPILATION_CACHE=0`` keeps the cache off. JAX treats the cache as
trusted (whoever can write to it can make the process run code), which is why it lives in the
user's own cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from kplug.cache import cache_dir

ENVIRONMENT = "KPLUG_JAX_COMPILATION_CACHE"
MAX_BYTES = 2**30
# compiles shorter than this are not stored: thousands of tiny entries cost more to write than
# they save (JAX's own default is 1 s, which skips the step functions of small models)
MIN_COMPILE_SECONDS = 0.2


def use_jax_compilation_cache() -> Path | None:
    """On the jax backend, keep compiled programs in kplug's on-disk cache unless the user chose otherwise.

    Returns:
        The cache directory in use on jax (kplug's or the user's own), None on other backends
        or with ``KPLUG_JAX_COMPILATION_CACHE=0``.
    """
    if keras.backend.backend() != "jax" or os.environ.get(ENVIRONMENT, "1") == "0":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return Path(chosen)
    folder = cache_dir() / "jax-compilation"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    # JAX decides once per process whether it uses the cache, at its first compile: ask again
    compilation_cache.reset_cache()
    return folder
