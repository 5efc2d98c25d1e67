from django.http import HttpResponse
from django.urls import path


def health(request):
    return HttpResponse("ok\n", content_type="text/plain")


def index(request):
    return HttpResponse("hello from django, Host %s\n" % request.get_host(), content_type="text/plain")


urlpatterns = [
    path("health/", health),
    path("", index),
]
