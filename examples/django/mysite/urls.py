"""URL routes: the catalog's home page, JSON API, visit counter and multipart upload, plus Django's admin."""

from django.contrib import admin
from django.urls import path

from catalog import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/books/", views.book_list, name="book-list"),
    path("upload/", views.upload, name="upload"),
    path("api/visits/", views.visits, name="visits"),
    path("admin/", admin.site.urls),
]
