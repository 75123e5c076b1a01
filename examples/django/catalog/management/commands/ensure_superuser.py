import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """`manage.py ensure_superuser`: createsuperuser --noinput that succeeds when the user exists."""

    help = ("Creates a superuser unless one with that username exists. The password comes from "
            "--password or $DJANGO_SUPERUSER_PASSWORD.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument("--password", default=None)

    def handle(self, *args, username, email, password, **options):
        password = password or os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            # An existing account is left alone so a changed password is never reset behind its back.
            self.stdout.write("ensure_superuser: %r already exists" % username)
            return
        if not password:
            raise CommandError("no password: pass --password or set DJANGO_SUPERUSER_PASSWORD")
        users.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write("ensure_superuser: created %r" % username)
