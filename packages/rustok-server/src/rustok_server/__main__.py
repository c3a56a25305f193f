"""``python -m rustok_server``: the same command as ``rustok-server``."""

from rustok_server.cli import main

if __name__ == "__main__":  # importing the module (documentation tools, probes) runs nothing
    raise SystemExit(main())
