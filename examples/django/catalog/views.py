from django.core.cache import cache
from django.db import connection
from django.http import HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

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


@csrf_exempt
@require_POST
def upload(request):
    """A multipart/form-data upload: every file's field, name and size as JSON. Django keeps files up
    to FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) in memory and streams larger ones to temporary files.
    No CSRF token, so that clients without a session (bench/run.py's django-upload) can post."""
    files = [{"field": field, "name": uploaded.name, "size": uploaded.size}
             for field, items in request.FILES.lists() for uploaded in items]
    return JsonResponse({"files": files})


@csrf_exempt
def visits(request):
    """A counter in the cache: POST adds one and answers the new count, GET only reads it. With
    REDIS_URL every host behind a load balancer counts into the same one."""
    if request.method == "POST":
        cache.add("catalog:visits", 0, timeout=None)
        count = cache.incr("catalog:visits")
    elif request.method in ("GET", "HEAD"):
        count = cache.get("catalog:visits", 0)
    else:
        return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
    return JsonResponse({"visits": count})
