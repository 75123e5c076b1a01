from django.contrib import admin

from catalog.models import Book


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    """Admin list and forms for books."""

    list_display = ("title", "author", "published", "created_at")
    search_fields = ("title", "author")
    date_hierarchy = "published"
