"""``ROOT_URLCONF``: Label Studio's URLs plus ``/api/xnaming/``."""

from core.urls import urlpatterns as label_studio_urlpatterns
from django.urls import path

from .views import AnnotatorAPI, AnnotatorListAPI

urlpatterns = [
    path("api/xnaming/annotators", AnnotatorListAPI.as_view(), name="xnaming-annotators"),
    path("api/xnaming/annotators/<int:pk>", AnnotatorAPI.as_view(), name="xnaming-annotator"),
    *label_studio_urlpatterns,
]
