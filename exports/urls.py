from django.urls import path

from . import views

urlpatterns = [
    path("exports/", views.export_list, name="export_list"),
    path("exports/new/", views.export_new, name="export_new"),
    path("exports/<int:pk>/", views.export_detail, name="export_detail"),
    path("exports/<int:pk>/delete/", views.export_delete, name="export_delete"),
    path("exports/<int:pk>/files/<str:name>", views.export_download, name="export_download"),
]
