import datetime

from django.core.management.base import BaseCommand
from django.db import transaction

from catalog.models import Book

BOOKS = [
    ("The C Programming Language", "Brian W. Kernighan and Dennis M. Ritchie", datetime.date(1978, 2, 22)),
    ("Structure and Interpretation of Computer Programs", "Harold Abelson and Gerald Jay Sussman",
     datetime.date(1985, 7, 1)),
    ("UNIX Network Programming", "W. Richard Stevens", datetime.date(1990, 1, 1)),
    ("The Pragmatic Programmer", "Andrew Hunt and David Thomas", datetime.date(1999, 10, 20)),
]


class Command(BaseCommand):
    """`manage.py seed`: adds the sample books; running it again adds nothing."""

    help = "Creates the sample books (idempotent)."

    def handle(self, *args, **options):
        created = 0
        with transaction.atomic():
            for title, author, published in BOOKS:
                _book, was_created = Book.objects.get_or_create(
                    title=title, author=author, defaults={"published": published})
                created += was_created
        self.stdout.write("seed: %d book(s) created, %d in the catalog" % (created, Book.objects.count()))
