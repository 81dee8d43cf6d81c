"""Speed probes of a run config (``kplug bench`` and ``kplug.bench``): the speed concept.

``candidates`` lists the compile settings worth trying per backend, ``probe`` times a
few dozen training steps of the real run in one process, ``run`` starts one child
process per backend and setting and recommends the fastest, ``apply`` writes the choice
into the config file and the record that ``train.compile: auto`` reads
(``kplug.config.compile_record``).
"""
