from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """The example's only app: a list of books with an admin and a JSON API."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "catalog"
