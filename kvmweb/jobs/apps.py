from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "kvmweb.jobs"
    label = "jobs"
