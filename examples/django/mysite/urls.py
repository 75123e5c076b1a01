"""URL routes: the catalog's home page and JSON API, plus Django's admin."""

from django.contrib import admin
from django.urls import path

from catalog import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/books/", views.book_list, name="book-list"),
    path("admin/", admin.site.urls),
]
