raise ImportError('kplug_fake_import needs libfoo, which is not installed')
