from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from catalog.models import Book


@require_GET
def home(request):
    return render(request, "catalog/home.html", {"books": Book.objects.all()})


@require_GET
def book_list(request):
    """Every book as JSON, in the model's order (published date, then title)."""
    response = JsonResponse([book.as_dict() for book in Book.objects.all()], safe=False)
    # Lets clients (and the integration tests) see which database actually answered.
    response["X-Catalog-Database"] = connection.vendor
    return response
