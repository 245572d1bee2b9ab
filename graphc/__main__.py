"""``python -m graphc ...`` is the ``graphc`` command."""
from .cli import main

if __name__ == "__main__":  # importing this module (pydoc, test collectors) must not run it
    raise SystemExit(main())
