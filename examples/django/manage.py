#!/usr/bin/env python3
"""Django's command-line utility for the example site (run it with /usr/bin/python3 on Debian)."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. On Debian: apt-get install python3-django, then run this "
            "with /usr/bin/python3."
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
