"""Reads for teacher configs."""

from django.db.models import QuerySet

from ..models import TeacherConfig


def teacher_config_list() -> QuerySet[TeacherConfig]:
    return TeacherConfig.objects.all()
