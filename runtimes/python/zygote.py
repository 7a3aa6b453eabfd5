# zygote.py - nimbus' Python zygote: one pre-initialised interpreter that clones sandboxed
# instances of python3.x functions, so they skip the interpreter start and the imports.
#
# Started by the spawner (src/spawner.c) as `PYTHON -s RUNTIME_DIR/python/zygote.py MODULE FD`
# with the platform's default environment, as root. It loads the _nimbus_zygote extension
# (src/zygote_py.c) from MODULE, hardens itself (own namespaces, read-only mounts, fewer
# capabilities), imports bootstrap.py as __main__ exactly as `python3 /var/runtime/python/
# bootstrap.py` would (file name, sys.argv, sys.path[0]) plus the standard modules it and common
# handlers use, freezes the heap (gc.freeze: the collector never touches, so never copies, those
# pages) and serves the spawner on FD.
#
# In each instance, serve() returns inside a fully built sandbox (unprivileged, seccomp on, the
# function's /var/task, its own pid/mount/net namespaces; src/sandbox.c) with the spec's argv and
# environment. This file then makes the process look like a fresh start - os.environ, sys.argv,
# time zone, per-user site paths, random state - and runs bootstrap's main(). What stays the same
# in every instance of one zygote, and why that is safe: docs/design/zygote.md.
#
# The user site directory is off in the zygote (-s: it runs as root and must not import from a
# directory like /tmp/.local); sys.flags.no_user_site is therefore 1 in instances.

import gc
import os
import sys

BOOTSTRAP = "/var/runtime/python/bootstrap.py"

# What bootstrap.py imports (also lazily), and what handlers commonly import. Nothing that keeps
# per-process secrets or threads from import time (multiprocessing's authkey, asyncio loops...).
PRELOAD = (
    "base64", "collections", "copy", "dataclasses", "datetime", "decimal", "email.utils",
    "functools", "hashlib", "hmac", "http.client", "importlib", "io", "itertools", "json",
    "logging", "math", "random", "re", "socket", "ssl", "string", "struct", "tempfile", "time",
    "traceback", "typing", "urllib.error", "urllib.parse", "urllib.request", "uuid",
)


def _load_extension(path):
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("_nimbus_zygote", path)
    spec = importlib.util.spec_from_file_location("_nimbus_zygote", path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _load_bootstrap(host_dir):
    """bootstrap.py as the __main__ module, as if run as a script from /var/runtime/python; its
    `if __name__ == "__main__"` sees _NIMBUS_ZYGOTE and does not start the loop."""
    import types

    with open(os.path.join(host_dir, "bootstrap.py"), "rb") as f:
        code = compile(f.read(), BOOTSTRAP, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = BOOTSTRAP
    main.__builtins__ = __builtins__
    main._NIMBUS_ZYGOTE = True
    sys.modules["__main__"] = main
    exec(code, main.__dict__)
    return main


def _become_instance(argv, envp):
    """In a new instance: the process state a fresh `python3 bootstrap.py` would have."""
    import random
    import site
    import time

    data = os.environ._data  # bytes -> bytes; the C environ already is envp (sandbox.c)
    data.clear()
    for item in envp:
        key, sep, value = item.partition(b"=")
        if sep and key:
            data.setdefault(key, value)  # first one wins, as at interpreter start
    args = [os.fsdecode(a) for a in argv]
    sys.orig_argv[:] = args
    sys.argv[:] = args[1:]
    time.tzset()  # TZ may differ from the zygote's
    random.seed()  # also done by random's own at-fork hook; explicit for the record
    site.ENABLE_USER_SITE = site.check_enableusersite()
    site.USER_BASE = site.USER_SITE = None
    site.getusersitepackages()  # for this uid and HOME (never exists yet: /tmp is empty)


def main():
    module_path, sock = sys.argv[1], int(sys.argv[2])
    host_dir = os.path.dirname(os.path.abspath(__file__))
    zygote = _load_extension(module_path)
    zygote.harden()
    sys.path[0] = os.path.dirname(BOOTSTRAP)
    sys.dont_write_bytecode = False  # as a fresh start (nothing is writable here anyway)
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    bootstrap = _load_bootstrap(host_dir)
    sys.argv[:] = [BOOTSTRAP]
    gc.collect()
    gc.freeze()
    got = zygote.serve(sock)
    if got is None:
        return 0  # the spawner is gone
    del zygote
    _become_instance(*got)
    return bootstrap.main()


if __name__ == "__main__":
    sys.exit(main())
