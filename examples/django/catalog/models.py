from django.db import models


class Book(models.Model):
    """One book in the catalog; rows are created by `manage.py seed` and through the admin."""

    title = models.CharField(max_length=200)
    author = models.CharField(max_length=200)
    published = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["published", "title", "id"]

    def __str__(self):
        return "%s (%s)" % (self.title, self.author)

    def as_dict(self):
        return {
            "id": self.id,
            "title": self.title,
            "author": self.author,
            "published": self.published.isoformat(),
            "created_at": self.created_at.isoformat(),
        }
